"""Per-call lanes: one queue and one worker thread each, with retry and dead letters.

A call always goes to the same lane, so the events of one call are handled in order while
different calls run in parallel. Work that fails (the journal is unavailable) is tried again
with capped exponential backoff (``Backoff``) for ``event_retry_max_age``: its lane waits,
the other lanes go on. Only then is it kept as a dead letter (a rejected request with source
``dispatcher``), counted in ``callbridge_events_failed_total``, and passed.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import metrics
from ..faults import FaultLog, journal_fault
from ..journal.base import Journal, StoredEvent
from .backoff import Backoff, Stopped
from .common import describe
from .tracker import Change

log = logging.getLogger("callbridge.engine.dispatcher.lanes")

#: Waits before failed work is tried again: 0.2 s, doubling up to 30 s.
EVENT_BACKOFF = Backoff(initial=0.2, cap=30.0)
#: Source of the rejected-request record kept for work given up on.
DEAD_LETTER_SOURCE = "dispatcher"


@dataclass(frozen=True, slots=True)
class LaneWork:
    """One item for a lane: ``run`` it; ``seq`` is the event's (None for tracker changes);
    ``letter`` says what to keep as a dead letter if it is given up on."""

    run: Callable[[], None]
    seq: int | None
    letter: Callable[[], tuple[str, str]]


def event_letter(stored: StoredEvent) -> tuple[str, str]:
    """("event", what to keep of it): enough to find it and feed it again by hand."""
    body = {"seq": stored.seq, "dedup_key": stored.dedup_key, "raw": stored.raw}
    return "event", json.dumps(body, separators=(",", ":"))


def changes_letter(changes: Sequence[Change]) -> tuple[str, str]:
    """("changes", the calls and kinds of tracker changes given up on)."""
    body = [{"kind": c.kind, "call": c.call.key} for c in changes]
    return "changes", json.dumps(body, separators=(",", ":"))


class Lanes:
    """``count`` lanes; ``done(seq)`` is called once an item is done or kept as a dead letter."""

    def __init__(
        self,
        count: int,
        *,
        journal: Journal,
        faults: FaultLog,
        stopping: threading.Event,
        max_age: float,
        done: Callable[[int | None], None],
    ) -> None:
        self._journal = journal
        self._faults = faults
        self._stopping = stopping
        self._max_age = max_age
        self._done = done
        self._queues: list[queue.SimpleQueue[LaneWork | None]] = [
            queue.SimpleQueue() for _ in range(count)
        ]
        self._threads = [
            threading.Thread(target=self._run, args=(q,), name=f"dispatch-{i}", daemon=True)
            for i, q in enumerate(self._queues)
        ]

    def __len__(self) -> int:
        return len(self._queues)

    def index(self, company_id: str | None, key: str) -> int:
        """The lane of a call (or device) key: always the same one."""
        return hash((company_id or "", key)) % len(self._queues)

    def put(self, index: int, work: LaneWork) -> None:
        """Queue ``work`` on lane ``index``."""
        self._queues[index].put(work)

    def start(self) -> None:
        """Start the lanes' threads."""
        for thread in self._threads:
            thread.start()

    def stop(self, join_until: Callable[[], float]) -> None:
        """Let each lane finish its current item, then end; ``join_until()`` is the time left."""
        for q in self._queues:
            q.put(None)
        for thread in self._threads:
            thread.join(max(0.1, join_until()))

    def _run(self, items: queue.SimpleQueue[LaneWork | None]) -> None:
        while True:
            work = items.get()
            if work is None:
                return
            if self._stopping.is_set():
                # Leave the rest to the next start: the cursor has not moved past it.
                continue
            if self._attempt(work):
                self._done(work.seq)

    def _attempt(self, work: LaneWork) -> bool:
        """Run ``work`` until it succeeds or is kept as a dead letter; False if we stop first.

        Only this lane waits: the reader keeps feeding the other lanes, and the cursor stays
        below the item's seq (it is in flight) until the work is done or its dead letter kept.
        """
        tries = [1]

        def failed(exc: BaseException, attempt: int, wait: float) -> None:
            tries[0] = attempt + 1
            # One line per outage, not one per event and attempt.
            self._faults.report(
                "events",
                f"{journal_fault(self._journal, exc)}; events wait and are tried again",
                exc,
            )
            log.debug(
                "event %s failed (attempt %d), trying again in %.1fs: %s",
                work.seq,
                attempt,
                wait,
                describe(exc),
            )

        try:
            attempts = EVENT_BACKOFF.run(
                work.run, stop=self._stopping, give_up_after=self._max_age, on_failure=failed
            )
        except Stopped:
            return False  # not done: handled again after the restart
        except Exception as exc:
            log.exception(
                "event %s failed %d times over %.0fs; keeping it as a dead letter",
                work.seq,
                tries[0],
                self._max_age,
            )
            item, raw = work.letter()
            return self._dead_letter(item, raw, exc)
        if attempts > 1:
            self._faults.clear("events", "events are handled again")
        return True

    def _dead_letter(self, item: str, raw: str, error: BaseException) -> bool:
        """Keep what was given up on among rejected requests, then count it.

        The record is what lets the cursor pass the event, so it is retried (capped backoff)
        until it is written; False when the dispatcher stops first (the event stays below the
        cursor and is handled again after the restart).
        """

        def write() -> None:
            self._journal.record_rejected(
                raw=raw,
                reason=f"{item} given up after retrying: {describe(error)}",
                source=DEAD_LETTER_SOURCE,
            )

        def failed(exc: BaseException, attempt: int, wait: float) -> None:
            message = f"{journal_fault(self._journal, exc)}; a dead letter waits"
            self._faults.report("events", message, exc)

        try:
            EVENT_BACKOFF.run(write, stop=self._stopping, on_failure=failed)
        except Stopped:
            return False
        metrics.EVENTS_FAILED.labels(item).inc()
        return True
