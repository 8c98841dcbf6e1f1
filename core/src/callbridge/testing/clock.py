"""A clock the test moves by hand, for the engine, the tracker and timestamps of events.

The engine takes ``clock=`` (a callable returning an aware UTC datetime) and the tracker only
knows the times it is given, so a test can play a ten-minute call in milliseconds and step
past the group window or the call expiry without sleeping.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

#: Where every FakeClock starts unless told otherwise: a Wednesday morning, office hours.
DEFAULT_START = datetime(2025, 1, 15, 9, 0, 0, tzinfo=UTC)


class FakeClock:
    """A thread-safe clock that only moves when ``advance`` or ``set`` is called.

    Call it (``clock()``) wherever a ``Callable[[], datetime]`` is expected.
    """

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = _aware(start)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return self.now()

    def now(self) -> datetime:
        """The current fake time (timezone-aware UTC)."""
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        """Move forward by ``seconds`` (and/or ``minutes=``, ``hours=``); return the new time."""
        step = timedelta(seconds=seconds, **delta)
        if step < timedelta(0):
            raise ValueError("a clock only moves forward; use set() to jump back on purpose")
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (naive datetimes are taken as UTC)."""
        with self._lock:
            self._now = _aware(when)

    def __repr__(self) -> str:
        return f"FakeClock({self.now().isoformat()})"


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
