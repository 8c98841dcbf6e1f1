"""Which partitions of a shared journal this worker dispatches, kept in step with its leases.

The dispatcher reads every event once, in order; ``Ownership`` says which ones it hands to
its lanes (the partitions it holds a lease on, ``journal/sharing.py``) and keeps each
partition's cursor. A heartbeat thread renews the leases once a second; what a beat finds is
applied by the reader thread between two reads, so that a partition's events are always
handed on in order:

- **taken** (a new lease): the partition's open calls are restored from the journal into a
  tracker of its own, calls a crash left ended but unsettled are finished, and its events
  between its cursor and the reader's position are handed on before any later one;
- **surplus** (more than the fair share, after a worker joined): no more of its events are
  handed on; once those in flight are done its cursor is saved and the lease dropped, so the
  next owner starts exactly where this one stopped;
- **lost** (the lease expired, e.g. this process stalled): dropped at once; what it still has
  in flight finishes, and the new owner handles those events again, which the tracker, the
  per call x plugin deliveries and the connectors' idempotency keys absorb.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from ..faults import FaultLog
from ..journal.base import Journal, StoredEvent
from ..journal.sharing import BEAT_INTERVAL, LEASE_TTL, Beat, WorkShare
from ..models import Call
from ..voispeed.events import DeviceEvent
from .partitions import PartitionedTracker, call_partition, event_partition

log = logging.getLogger("callbridge.engine.dispatcher.ownership")

#: Most open calls read back when partitions are taken over.
_RESTORE_LIMIT = 1_000_000
#: Events read at a time when catching up a partition taken over.
_CATCH_UP_BATCH = 500
#: Seconds between two saves of the cursors: each save writes every partition held, and a
#: crash only costs handling again what came after the last one (absorbed, see above).
CURSOR_SAVE_INTERVAL = 0.2


class Reader(Protocol):
    """What ``Ownership`` needs of the dispatcher."""

    def position(self) -> int:
        """The seq of the last event read."""

    def hand_on(self, stored: StoredEvent, partition: int) -> None:
        """Put one event in flight on its lane."""

    def in_flight_floor(self) -> dict[int, int]:
        """Partition -> lowest seq in flight."""


class Ownership:
    """The partitions this worker dispatches; used by the dispatcher's reader thread only,
    apart from ``beat_loop`` (its own thread) and ``owns``."""

    def __init__(
        self,
        share: WorkShare,
        journal: Journal,
        trackers: PartitionedTracker,
        *,
        tracker_lock: threading.Lock,
        finish_unsettled: Callable[[list[Call]], int],
        claims: Callable[[], list[int]],
        faults: FaultLog,
    ) -> None:
        self.share = share
        self.partitions = share.partitions
        self._journal = journal
        self._trackers = trackers
        self._tracker_lock = tracker_lock
        self._finish_unsettled = finish_unsettled
        self._claims = claims
        self._faults = faults
        self._lock = threading.Lock()
        self._beat: Beat | None = None
        self._beat_ok = 0.0
        self._live = 1
        #: Partitions handed on, and the cursor each started from (its events after it).
        self.active: dict[int, int] = {}
        #: Partitions given up: the reader's position when their events stopped.
        self.releasing: dict[int, int] = {}
        self._saved: dict[int, int] = {}
        self._last_save = 0.0

    def live_workers(self) -> int:
        """How many workers were live at the last heartbeat (1 before the first)."""
        return self._live

    def owns(self, partition: int) -> bool:
        """Whether this worker hands on the partition's events now."""
        return partition in self.active

    def run_if_held(self, partition: int, work: Callable[[], None]) -> None:
        """Run an event's work unless its partition was lost since it was handed on (its
        next owner handles it from the partition's cursor, which this worker no longer
        saves): a worker that stalled past its lease does not write over the new owner.
        A partition being released still has its events in flight done here."""
        if partition in self.active or partition in self.releasing:
            work()
        else:
            log.debug("partition %d lost: its event is left to the new owner", partition)

    # -- the heartbeat thread -------------------------------------------------------------
    def beat(self) -> Beat:
        """One heartbeat (renewing the running deliveries' claims too); kept for the reader."""
        found = self.share.beat(self._claims())
        with self._lock:
            self._beat, self._beat_ok = found, time.monotonic()
        self._live = max(1, found.live)
        return found

    def beat_loop(
        self, stopping: threading.Event, wake: Callable[[], None], mark: Callable[[], None]
    ) -> None:
        """Beat every ``BEAT_INTERVAL`` until ``stopping``; ``wake`` the reader after each."""
        while not stopping.wait(BEAT_INTERVAL):
            mark()
            try:
                self.beat()
            except Exception as exc:
                self._faults.report("share", f"the heartbeat failed: {exc}", exc)
                continue
            self._faults.clear("share", "heartbeats go through again")
            wake()

    def _take_beat(self) -> Beat | None:
        with self._lock:
            found, self._beat = self._beat, None
            stale = time.monotonic() - self._beat_ok > LEASE_TTL * 0.8
        if stale and (self.active or self.releasing):
            # No heartbeat for most of a lease: others may hold our partitions by now.
            log.warning("no heartbeat for %.1fs: giving every partition up", LEASE_TTL * 0.8)
            return Beat(owned=frozenset(), fair=0, live=0)
        return found

    # -- the reader thread ----------------------------------------------------------------
    def start(self) -> int:
        """The first beat; returns where the reader starts (the lowest cursor it needs)."""
        beat = self.beat()
        cursors = self.share.cursors(range(self.partitions))
        if beat.owned:
            return min(cursors[p] for p in beat.owned)
        return min(cursors.values())

    def follow(self, reader: Reader) -> None:
        """Apply the latest beat: lost partitions dropped, surplus ones let go, new ones taken."""
        beat = self._take_beat()
        if beat is not None:
            held = set(self.active) | set(self.releasing)
            for partition in held - beat.owned:
                self._lost(partition)
            surplus = len(beat.owned) - beat.fair - len(self.releasing)
            for partition in sorted(self.active, reverse=True)[: max(0, surplus)]:
                start = self.active.pop(partition)
                self.releasing[partition] = max(start, reader.position())
            new = set(beat.owned) - set(self.active) - set(self.releasing)
            if new:
                self._take(sorted(new), reader)
        self._finish_releases(reader)

    def wants(self, stored: StoredEvent) -> int | None:
        """The event's partition when this worker hands it on, else None (a login is learnt
        all the same: any partition's calls may need the user's extension)."""
        partition = event_partition(stored.event, self.partitions)
        start = self.active.get(partition)
        if start is not None and stored.seq > start:
            return partition
        if isinstance(stored.event, DeviceEvent):
            with self._tracker_lock:
                self._trackers.learn_device(stored.event)
        return None

    def save_cursors(self, reader: Reader) -> bool:
        """Save the cursors that moved (each partition's events up to it are handled), at
        most every ``CURSOR_SAVE_INTERVAL``; True when they were just saved."""
        now = time.monotonic()
        if now - self._last_save < CURSOR_SAVE_INTERVAL:
            return False
        self._last_save = now
        floors = reader.in_flight_floor()
        position = reader.position()
        moved = {}
        for partition, start in self.active.items():
            floor = floors.get(partition)
            cursor = max(start, position if floor is None else floor - 1)
            if self._saved.get(partition) != cursor:
                moved[partition] = cursor
        if moved:
            self.share.save_cursors(moved)
            self._saved.update(moved)
        return True

    def stop(self, reader: Reader) -> None:
        """A clean stop: every partition released at its cursor, so takeover is immediate."""
        floors = reader.in_flight_floor()
        position = reader.position()
        for partition, start in {**self.active, **self.releasing}.items():
            floor = floors.get(partition)
            at = self.releasing.get(partition, position)
            self.share.release(partition, max(start, at if floor is None else floor - 1))
        self.active.clear()
        self.releasing.clear()
        self.share.leave()

    def _lost(self, partition: int) -> None:
        log.warning("partition %d: lease lost; another worker takes it over", partition)
        self.active.pop(partition, None)
        self.releasing.pop(partition, None)
        self._saved.pop(partition, None)
        with self._tracker_lock:
            self._trackers.drop(partition)

    def _take(self, new: list[int], reader: Reader) -> None:
        """Restore the new partitions' calls, then hand on their events after their cursors."""
        cursors = self.share.cursors(new)
        calls = [
            call
            for call in self._journal.list_calls(_RESTORE_LIMIT, open_only=True)
            if call_partition(call, self.partitions) in cursors
        ]
        finished = self._finish_unsettled(calls)
        by_partition: dict[int, list[Call]] = {p: [] for p in new}
        for call in calls:
            by_partition[call_partition(call, self.partitions)].append(call)
        with self._tracker_lock:
            for partition, own in by_partition.items():
                self._trackers.add(partition, own)
        # Held before the catch-up hands their events on (lanes check ``run_if_held``).
        self.active.update(cursors)
        self._saved.update(cursors)
        self._catch_up(cursors, reader)
        log.info(
            "took %d partition(s) (%d open call(s), %d finished); %d held",
            len(new),
            len(calls),
            finished,
            len(self.active),
        )

    def _catch_up(self, cursors: Mapping[int, int], reader: Reader) -> None:
        """Hand on the partitions' events between their cursors and the reader's position."""
        after = min(cursors.values())
        until = reader.position()
        while after < until:
            batch = self._journal.events_after(after, limit=_CATCH_UP_BATCH)
            if not batch:
                return
            for stored in batch:
                if stored.seq > until:
                    return
                partition = event_partition(stored.event, self.partitions)
                start = cursors.get(partition)
                if start is not None and stored.seq > start:
                    reader.hand_on(stored, partition)
                after = stored.seq

    def _finish_releases(self, reader: Reader) -> None:
        """Drop the leases of released partitions once nothing of theirs is in flight."""
        if not self.releasing:
            return
        floors = reader.in_flight_floor()
        for partition, at in list(self.releasing.items()):
            if partition in floors:
                continue
            self.share.release(partition, at)
            del self.releasing[partition]
            self._saved.pop(partition, None)
            with self._tracker_lock:
                self._trackers.drop(partition)
            log.info("partition %d released at event %d", partition, at)
