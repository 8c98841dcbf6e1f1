"""``RecordingCrm``: a CRM connector that only remembers what it was asked to log.

Tests of the core's own path (the ingress, the tracker, the engine) need a ``log_call`` to
end at, and something to ask "which calls were logged, and how?". This is that connector,
once: pass it as ``LiveService(extra_plugins=[recorder])`` or to ``make_plugins``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ..hookspecs import hookimpl
from ..models import CallRecord

__all__ = ["RecordingCrm"]


class RecordingCrm:
    """Keeps every ``CallRecord`` it is asked to log (thread-safe); logs nothing anywhere."""

    name = "recorder"

    def __init__(self) -> None:
        self._records: list[CallRecord] = []
        self._lock = threading.Lock()

    @hookimpl
    def log_call(self, record: CallRecord) -> None:
        """Remember the record (no activity reference: there is no CRM behind it)."""
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[CallRecord]:
        """Every record so far, in the order they came."""
        with self._lock:
            return list(self._records)

    def of(self, user_call_ids: Iterable[str]) -> list[CallRecord]:
        """The records of the given PBX call ids (a simulated call's legs, say)."""
        wanted = set(user_call_ids)
        return [r for r in self.records if r.call.user_call_id in wanted]
