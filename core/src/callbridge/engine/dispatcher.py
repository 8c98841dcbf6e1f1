"""From journaled PBX events to pops, agent messages and CRM deliveries, in worker threads.

The dispatcher is the reader: it takes events from the journal after the ``dispatcher``
cursor and hands each on; the parts it wires do the rest (see ``docs/concepts.md``):

1. ``lanes.Lanes``: one queue and one worker thread per lane, ``settings.dispatch.workers``
   lanes, a call always on the same lane. Events of one call are handled in order, different
   calls in parallel; failed work is retried with backoff, then kept as a dead letter.
2. ``reactions.Reactions``: what a lane runs for an event: the tracker's changes acted on
   (pops, click-to-call states, deliveries enqueued), with contacts from
   ``lookups.Lookups`` (cache, one request per number, a time budget).
3. ``deliveries.Deliveries``: due deliveries run ``log_call`` on each plugin's own pool,
   and pause while the journal cannot be written (``deliveries.JournalPause``).

The cursor moves past an event only once its effects are committed, and never past an event
still in a lane. After a crash, events after the cursor are handled again: the tracker absorbs
repeats, deliveries are unique per call x plugin x action, and a repeated pop is harmless.

Nothing here runs on an asyncio loop; the HTTP service only reads the journal and the bus.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial

from ..faults import FaultLog
from ..journal.base import Journal, StoredEvent
from ..journal.sharing import WorkShare
from ..models import Call
from ..plugins.manager import Plugins
from ..settings import Settings
from ..voispeed.events import AnyEvent, CallEvent, DeviceEvent
from .bus import AgentBus
from .common import utcnow
from .deliveries import Deliveries, JournalPause
from .lanes import Lanes, LaneWork, changes_letter, event_letter
from .lookups import Lookups
from .originates import OriginateMatcher
from .ownership import Ownership
from .partitions import PartitionedTracker
from .reactions import Reactions
from .retry import RetryPolicy
from .tracker import Change, Tracker
from .wrapups import WrapUps

log = logging.getLogger(__name__)

CURSOR_NAME = "dispatcher"
#: Most events handed to lanes and not yet done; the reader waits beyond that.
_MAX_IN_FLIGHT = 5000

__all__ = ["CURSOR_NAME", "Dispatcher", "utcnow"]


class Dispatcher:
    """Reads journaled events after its cursor and hands them to the lanes."""

    def __init__(
        self,
        journal: Journal,
        tracker: Tracker | PartitionedTracker,
        plugins: Plugins,
        settings: Settings,
        *,
        share: WorkShare | None = None,
        bus: AgentBus | None = None,
        clock: Callable[[], datetime] = utcnow,
        wall_clock: Callable[[], datetime] = utcnow,
        tick_interval: float = 1.0,
        poll_interval: float = 0.05,
    ) -> None:
        self.journal = journal
        self.tracker = tracker
        self.plugins = plugins
        self.settings = settings
        self.bus = bus or AgentBus()
        #: Event time, for the tracker's expiries and group windows (tests pass a fake one).
        self._clock = clock
        #: Real time, for delivery schedules: the journal stamps deliveries with it.
        self._wall_clock = wall_clock
        self._tick_interval = tick_interval
        self._poll_interval = poll_interval
        self._stopping = threading.Event()
        self._wake = threading.Event()
        #: One log line per journal outage, not one per failed write.
        self.faults = FaultLog(log)
        #: Monotonic time of the last pass of the reader and of the delivery loop (health).
        self.beats: dict[str, float] = {}
        self._wire_parts(share)
        self._state = threading.Condition()
        #: Events handed to lanes and not yet done: seq -> partition (0 with one engine).
        self._in_flight: dict[int, int] = {}
        self._dispatched = 0
        self._queued = 0
        self._persisted = 0
        self._threads: list[threading.Thread] = []
        self._started = False

    def _wire_parts(self, share: WorkShare | None) -> None:
        """Make the parts the reader hands events to, each given only what it uses."""
        dispatch = self.settings.dispatch
        journal, plugins = self.journal, self.plugins
        self.lookups = Lookups(plugins, dispatch, pool_size=max(4, dispatch.workers * 2))
        self.cache = self.lookups.cache
        self.policy = RetryPolicy.from_settings(dispatch)
        self.originates = OriginateMatcher(journal, self.settings)
        self.pause = JournalPause(journal, self.faults)
        self.wrapups = WrapUps(journal, plugins, self.settings, self._wall_clock)
        self.deliveries = Deliveries(
            journal,
            plugins,
            self.lookups,
            self.policy,
            wrapups=self.wrapups,
            pause=self.pause,
            stopping=self._stopping,
            wall_clock=self._wall_clock,
            poll_interval=self._poll_interval,
            beat=partial(self._beat, "deliveries"),
        )
        self.reactions = Reactions(
            journal,
            self.tracker,
            plugins,
            bus=self.bus,
            lookups=self.lookups,
            originates=self.originates,
            on_enqueued=self.deliveries.wake.set,
            recordings=self.settings.recordings,
        )
        self.lanes = Lanes(
            dispatch.workers,
            journal=journal,
            faults=self.faults,
            stopping=self._stopping,
            max_age=dispatch.event_retry_max_age,
            done=self._finished_item,
        )
        #: With several workers on one journal: the partitions this one handles.
        self.ownership: Ownership | None = None
        if share is not None:
            if not isinstance(self.tracker, PartitionedTracker):
                raise TypeError("a shared journal needs a PartitionedTracker")
            self.ownership = Ownership(
                share,
                journal,
                self.tracker,
                tracker_lock=self.reactions.tracker_lock,
                finish_unsettled=self.reactions.finish_unsettled,
                claims=self.deliveries.running_ids,
                faults=self.faults,
            )
            self.deliveries.share = share
            self.deliveries.workers = self.ownership.live_workers

    def _beat(self, loop: str) -> None:
        self.beats[loop] = time.monotonic()

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the reader, the lanes and the delivery loop (resuming from the cursor)."""
        if self._started:
            return
        self._started = True
        if self.ownership is not None:
            cursor = self.ownership.start()
        else:
            cursor = self.journal.get_cursor(CURSOR_NAME)
        self._dispatched = self._persisted = cursor
        if self.ownership is not None:
            self.ownership.follow(self)  # the first share taken before ``start`` returns
        self.lanes.start()
        loops: list[tuple[str, Callable[[], None]]] = [
            ("dispatch-reader", self._read_loop),
            ("deliveries", self.deliveries.loop),
        ]
        if self.ownership is not None:
            beat = partial(
                self.ownership.beat_loop,
                self._stopping,
                self._wake.set,
                partial(self._beat, "share"),
            )
            loops.append(("work-share", beat))
        for name, target in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("dispatcher started at event %d with %d lanes", cursor, len(self.lanes))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work, finish what lanes hold, persist the cursor, wait for deliveries."""
        if not self._started or self._stopping.is_set():
            return
        self._stopping.set()
        self._wake.set()
        self.deliveries.wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self.lanes.stop(lambda: deadline - time.monotonic())
        with contextlib.suppress(Exception):
            self._persist_cursor()
            if self.ownership is not None:
                self.ownership.stop(self)
        self.lookups.close()
        self.deliveries.close(deadline)

    def wake(self) -> None:
        """New events are in the journal: look now instead of at the next poll."""
        self._wake.set()

    def finish_unsettled(self, calls: Iterable[Call]) -> int:
        """Finish calls a crash left ended but not settled (see ``Reactions.finish_unsettled``)."""
        return self.reactions.finish_unsettled(calls)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every journaled event is handled and no delivery is due or running.

        Deliveries scheduled for later (backoff) do not count. Returns False on timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self._idle():
                return True
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            self.deliveries.wake.set()
            time.sleep(0.02)

    def _idle(self) -> bool:
        with self._state:
            busy = bool(self._in_flight) or self._queued > 0
            cursor = self._dispatched
        if busy or self._persisted < cursor or self.journal.events_after(cursor, limit=1):
            return False
        return not self.deliveries.busy() and not self.deliveries.any_due()

    # -- reading and cursor ---------------------------------------------------------------
    def _read_loop(self) -> None:
        last_tick = 0.0
        while not self._stopping.is_set():
            self._beat("reader")
            try:
                got = self._read_once()
                if time.monotonic() - last_tick >= self._tick_interval:
                    last_tick = time.monotonic()
                    self._tick()
                self._persist_cursor()
            except Exception as exc:
                if self._stopping.is_set():
                    return
                self.pause.down(exc)  # logged once per outage, not once per pass
                got = 0
                self._stopping.wait(1.0)
            if not got:
                self._wake.wait(self._poll_interval)
                self._wake.clear()

    def _read_once(self) -> int:
        with self._state:
            while len(self._in_flight) >= _MAX_IN_FLIGHT and not self._stopping.is_set():
                self._state.wait(0.5)
                self._beat("reader")  # waiting for lanes is not wedged
        own = self.ownership
        if own is not None:
            own.follow(self)
        batch = self.journal.events_after(self._dispatched, limit=500)
        for stored in batch:
            partition = 0 if own is None else own.wants(stored)
            if partition is not None:
                self.hand_on(stored, partition)
            with self._state:
                self._dispatched = stored.seq
        return len(batch)

    # -- what ``Ownership`` reads and calls (``ownership.Reader``) -------------------------
    def position(self) -> int:
        """The seq of the last event read."""
        with self._state:
            return self._dispatched

    def hand_on(self, stored: StoredEvent, partition: int) -> None:
        """Put one event in flight on its call's lane."""
        with self._state:
            self._in_flight[stored.seq] = partition
            self._queued += 1
        self.lanes.put(self._lane_of(stored.event), self._event_work(stored, partition))

    def in_flight_floor(self) -> dict[int, int]:
        """Partition -> lowest seq in flight."""
        floors: dict[int, int] = {}
        with self._state:
            for seq, partition in self._in_flight.items():
                if seq < floors.get(partition, seq + 1):
                    floors[partition] = seq
        return floors

    def _event_work(self, stored: StoredEvent, partition: int = 0) -> LaneWork:
        run = self.reactions.event_work(stored)
        own = self.ownership
        if own is not None:
            run = partial(own.run_if_held, partition, run)
        return LaneWork(run=run, seq=stored.seq, letter=partial(event_letter, stored))

    def _tick(self) -> None:
        """Expire click-to-call requests, and hand the tracker's timed changes to their lanes.

        With several workers, the one holding partition 0 expires click-to-call requests.
        """
        if self.ownership is None or self.ownership.owns(0):
            for expired in self.originates.expire(self._wall_clock()):
                log.info("click-to-call %s: %s", expired.external_id, expired.error)
                self.reactions.tell_originate(expired)
        with self.reactions.tracker_lock:
            changes = list(self.tracker.tick(self._clock()))
        by_lane: dict[int, list[Change]] = {}
        for change in changes:
            index = self.lanes.index(change.call.company_id, change.call.user_call_id)
            by_lane.setdefault(index, []).append(change)
        for index, items in by_lane.items():
            with self._state:
                self._queued += 1
            work = LaneWork(
                run=partial(self.reactions.handle_changes, items),
                seq=None,
                letter=partial(changes_letter, items),
            )
            self.lanes.put(index, work)

    def _safe_cursor(self) -> int:
        """Highest seq such that every event up to it is done."""
        with self._state:
            if self._in_flight:
                return min(self._in_flight) - 1
            return self._dispatched

    def _persist_cursor(self) -> None:
        cursor = self._safe_cursor()
        if self.ownership is not None:
            if self.ownership.save_cursors(self):
                self._persisted = cursor
        elif cursor > self._persisted:
            self.journal.set_cursor(CURSOR_NAME, cursor)
            self._persisted = cursor

    def _finished_item(self, seq: int | None) -> None:
        with self._state:
            if seq is not None:
                self._in_flight.pop(seq, None)
            self._queued -= 1
            self._state.notify_all()

    def _lane_of(self, event: AnyEvent) -> int:
        if isinstance(event, CallEvent):
            return self.lanes.index(event.company_id, event.call_id)
        if isinstance(event, DeviceEvent):
            return self.lanes.index(event.company_id, "device:" + event.device_id)
        return 0
