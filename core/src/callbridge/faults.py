"""Logging a fault that repeats: one line per fault and interval, the traceback once.

A full disk or a lost Redis makes every request and every delivery fail the same way. Logging
each failure with its traceback buries the one line an operator needs under megabytes of
identical stacks (and, on a full disk, the log itself fills what little is left). So a fault
is logged when it starts (with the traceback, once per process), then at most once per
``interval`` with the number of repeats in between, and once more when it is over. The
message names what failed, where, and what to do about it (``journal_fault``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FaultLog", "file_fault", "journal_fault"]

#: Seconds between two lines about the same ongoing fault.
DEFAULT_INTERVAL = 60.0


@dataclass
class _Fault:
    since: float
    last_logged: float
    last_failed: float
    repeats: int = 0


class FaultLog:
    """Rate-limited error lines per fault key (``"journal"``, ``"delivery:webhook"``...)."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._active: dict[str, _Fault] = {}
        #: Causes (exception type and text) whose traceback was logged already: never twice
        #: in one process, whichever fault key met them (a full disk fails the events, the
        #: deliveries and the dead letters alike: one traceback tells all of it).
        self._traced: set[str] = set()

    def active(self, key: str) -> bool:
        """Whether the fault ``key`` was reported and not cleared since."""
        with self._lock:
            return key in self._active

    def report(self, key: str, message: str, exc: BaseException | None = None) -> bool:
        """Log ``message`` if the fault is new or its interval passed; True when it logged."""
        now = self._clock()
        with self._lock:
            fault = self._active.get(key)
            if fault is None:
                self._active[key] = _Fault(since=now, last_logged=now, last_failed=now)
                repeats = -1
            elif now - fault.last_logged >= self._interval:
                repeats = fault.repeats
                fault.repeats = 0
                fault.last_logged = fault.last_failed = now
            else:
                fault.repeats += 1
                fault.last_failed = now
                return False
            cause = f"{type(exc).__name__}: {exc}" if exc is not None else ""
            trace = exc is not None and cause not in self._traced
            if trace:
                self._traced.add(cause)
        if repeats >= 0:
            message = f"{message} (still failing; {repeats} more time(s) since the last line)"
        self._log.error(message, exc_info=exc if trace else None)
        return True

    def clear(self, key: str, message: str, *, settle: float = 0.0) -> bool:
        """The fault is over: log ``message`` once (True) if it had been reported.

        ``settle``: seconds that must have passed since the last failure. A disk that is
        nearly full fails one write and takes the next; without it, each flip would be a
        pair of lines. Until then the fault stays active (False), so its repeats stay quiet.
        """
        with self._lock:
            fault = self._active.get(key)
            if fault is None or self._clock() - fault.last_failed < settle:
                return False
            del self._active[key]
        self._log.warning("%s (after %.0fs)", message, self._clock() - fault.since)
        return True


def journal_fault(journal: object, exc: BaseException) -> str:
    """What an operator reads about a failed journal write: where, why, and the fix."""
    path = getattr(journal, "path", None)
    if path is None:
        text = f"{type(exc).__name__}: {exc}"
        return f"journal {journal!r} cannot be written ({text}); check that it is reachable"
    return file_fault(Path(path), exc)


def file_fault(path: Path, exc: BaseException, failed: str = "cannot be written") -> str:
    """``<path> <failed> (<error>); <the fix>``, the fix guessed from the error."""
    text = f"{type(exc).__name__}: {exc}"
    folder = path.parent
    lowered = text.lower()
    if "full" in lowered or "no space" in lowered or "disk i/o" in lowered:
        fix = f"free space on the disk holding {folder} (df -h {folder})"
    elif "readonly" in lowered or "read-only" in lowered or "permission" in lowered:
        fix = f"let the user running callbridge write {folder} and the files in it"
    elif "unable to open" in lowered or "not a directory" in lowered:
        fix = (
            f"check that {folder} exists, is a directory on a writable disk, and the user "
            "running callbridge can write it (CALLBRIDGE_DATA_DIR)"
        )
    else:
        fix = f"check the disk and the permissions of {folder}"
    return f"journal {path} {failed} ({text}); {fix}"
