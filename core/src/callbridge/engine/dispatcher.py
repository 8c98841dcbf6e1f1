"""From journaled PBX events to pops, agent messages and CRM deliveries, in worker threads.

The flow (see ``docs/concepts.md``):

1. A reader thread takes events from the journal after the ``dispatcher`` cursor and puts
   each on a *lane*: one queue and one worker thread per lane, ``settings.dispatch.workers``
   lanes, a call always on the same lane. So the events of one call are handled in order,
   while different calls run in parallel.
2. A lane feeds the event to the call tracker and acts on what it reports: ``ringing`` ->
   time-boxed, cached ``lookup_contact`` per plugin, then the pop (agent stream first, it is
   what the agent waits for, then the ``screen_pop`` hooks); ``answered``/``ended`` -> the pop
   again from the contacts already known (no CRM request); ``finished`` -> one delivery per
   ``log_call`` plugin, enqueued in the journal; ``dropped`` -> nothing to write. Every event
   also goes to the ``pbx_event`` hooks, and events of a click-to-call move its Originate.
3. The cursor moves past an event only once its effects are committed, and never past an
   event still in a lane. After a crash, events after the cursor are handled again: the
   tracker absorbs repeats, deliveries are unique per call x plugin x action, and a repeated
   pop is harmless. An event whose effects fail (the journal is unavailable) is tried again
   with capped exponential backoff for ``event_retry_max_age`` (its lane waits, the other
   lanes go on); only then is it kept as a dead letter (a rejected request with source
   ``dispatcher``), counted in ``callbridge_events_failed_total``, and passed.
4. A delivery thread takes due deliveries, per plugin, and runs ``log_call`` on that plugin's
   own small thread pool: a plugin that hangs or fails only delays its own deliveries. Each
   outcome is written back: done, retried later (backoff with jitter, or the plugin's hint),
   or dead. An outcome the journal cannot take (a full disk) holds the delivery back with
   the same backoff, in memory, and pauses every delivery until a probe write succeeds: the
   attempt after it runs ``log_call`` again with the same idempotency key, which is how a
   connector finds the activity it already wrote instead of writing a second one.

Nothing here runs on an asyncio loop; the HTTP service only reads the journal and the bus.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from pydantic import ValidationError

from .. import metrics
from ..context import Context
from ..errors import PermanentError, RetryLater
from ..faults import FaultLog, journal_fault
from ..journal.base import Delivery, Journal, StoredEvent
from ..models import ActivityRef, Call, CallRecord, CallState, Contact, Originate, ScreenPop
from ..settings import Settings
from ..voispeed.events import AnyEvent, CallEvent, DeviceEvent
from .bus import AgentBus
from .cache import MISSING, TTLCache
from .devices import remember_device
from .originates import OriginateMatcher
from .records import build_record, lookup_states, record_from_payload, settle_lookup
from .retry import RetryPolicy
from .tracker import call_key
from .tracker_leg import originate_belongs
from .wrapups import WrapUps, revision_of, with_revision

log = logging.getLogger(__name__)

CURSOR_NAME = "dispatcher"
#: Most events handed to lanes and not yet done; the reader waits beyond that.
_MAX_IN_FLIGHT = 5000
#: Deliveries of one plugin running at once (its own thread pool).
_DELIVERY_THREADS_PER_PLUGIN = 2
#: First wait before a failed event is tried again; it doubles up to ``_EVENT_RETRY_CAP``.
#: Tries go on for ``settings.dispatch.event_retry_max_age`` (a journal outage of minutes
#: must not lose an event's deliveries), then the event becomes a dead letter.
_EVENT_RETRY_INITIAL = 0.2
_EVENT_RETRY_CAP = 30.0
#: Source of the rejected-request record kept for an event given up on.
DEAD_LETTER_SOURCE = "dispatcher"
#: Longest error text kept on a delivery.
_MAX_ERROR = 1000
#: Seconds between two probe writes while the journal cannot be written; doubles up to the cap.
_JOURNAL_PROBE_INITIAL = 1.0
_JOURNAL_PROBE_CAP = 30.0

#: Originate states in the order a call goes through them; an originate only moves forward.
_ORIGINATE_RANK = {"ringing": 1, "answered": 2, "ended": 3}
_ORIGINATE_STATE_BY_EVENT = {
    16: "ringing",
    17: "ringing",
    18: "answered",
    19: "ended",
    20: "ended",
    21: "ended",
}


class ChangeLike(Protocol):
    """What the tracker reports: a kind and the call as it is now."""

    @property
    def kind(self) -> str: ...

    @property
    def call(self) -> Call: ...


class TrackerLike(Protocol):
    """The part of ``callbridge.engine.tracker.Tracker`` the dispatcher uses."""

    def restore(self, calls: Iterable[Call]) -> None: ...

    def apply(self, event: CallEvent, at: datetime) -> Sequence[ChangeLike]: ...

    def tick(self, now: datetime) -> Sequence[ChangeLike]: ...

    def key_for(self, company_id: str | None, user_call_id: str) -> str: ...

    def learn_device(self, event: DeviceEvent) -> None: ...


class PluginsLike(Protocol):
    """The part of ``callbridge.plugins.manager.Plugins`` the dispatcher uses."""

    def implementers(self, hook: str) -> list[str]: ...

    def lookup_contact(self, name: str, number: str, call: Call) -> object: ...

    def log_call(self, name: str, record: CallRecord) -> object: ...

    def update_call(
        self, name: str, record: CallRecord, activity: ActivityRef, revision: int
    ) -> object: ...

    def lookup_ttl(self, name: str, found: bool, default: float) -> float: ...

    def screen_pop(self, pop: ScreenPop) -> None: ...

    def pbx_event(self, event: AnyEvent) -> None: ...

    def startup(self, context: Context | None) -> None: ...  # the engine's

    def shutdown(self, context: Context | None) -> None: ...  # the engine's


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


__all__ = ["Dispatcher", "build_record"]


def _external_id_of(event: CallEvent, changes: Sequence[ChangeLike]) -> str | None:
    """The external id the tracker tied to the event's user call (an event without ``ext_id``
    of a click-to-call matched on its 17)."""
    for change in changes:
        call = change.call
        if call.user_call_id == event.call_id and call.external_id:
            return call.external_id
    return None


def _tracked(event: CallEvent, external_id: str, changes: Sequence[ChangeLike]) -> bool:
    """Whether the tracker gave the event's leg the originate with this external id."""
    return any(
        c.call.user_call_id == event.call_id
        and c.call.originate is not None
        and c.call.originate.external_id == external_id
        for c in changes
    )


@dataclass(frozen=True, slots=True)
class _EventItem:
    stored: StoredEvent


@dataclass(frozen=True, slots=True)
class _ChangesItem:
    changes: tuple[ChangeLike, ...]


_Item = _EventItem | _ChangesItem | None


class Dispatcher:
    """Turns journaled events into tracker changes, hook calls and deliveries."""

    def __init__(
        self,
        journal: Journal,
        tracker: TrackerLike,
        plugins: PluginsLike,
        settings: Settings,
        *,
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
        self.cache: TTLCache[tuple[str, str], Contact | None] = TTLCache(
            settings.dispatch.cache_size
        )
        self.policy = RetryPolicy.from_settings(settings.dispatch)
        self.originates = OriginateMatcher(journal, settings)
        self.wrapups = WrapUps(journal, plugins, settings, wall_clock)
        #: Event time, for the tracker's expiries and group windows (tests pass a fake one).
        self._clock = clock
        #: Real time, for delivery schedules: the journal stamps deliveries with it.
        self._wall_clock = wall_clock
        self._tick_interval = tick_interval
        self._poll_interval = poll_interval
        self._tracker_lock = threading.Lock()
        self._state = threading.Condition()
        self._in_flight: set[int] = set()
        self._dispatched = 0
        self._queued = 0
        self._persisted = 0
        self._contacts: dict[str, dict[str, Contact]] = {}
        self._contacts_lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake_reader = threading.Event()
        self._wake_deliveries = threading.Event()
        workers = settings.dispatch.workers
        self._lanes: list[_Lane] = [_Lane(self, i) for i in range(workers)]
        self._lookup_pool = ThreadPoolExecutor(
            max_workers=max(4, workers * 2), thread_name_prefix="lookup"
        )
        self._lookups: dict[tuple[str, str], Future[Contact | None]] = {}
        self._lookups_lock = threading.Lock()
        self._delivery_pools: dict[str, ThreadPoolExecutor] = {}
        #: Guards ``_delivery_pools``: the delivery thread adds pools while ``stop`` (in
        #: another thread) shuts them down; once closed, no new pool is made.
        self._pools_lock = threading.Lock()
        self._pools_closed = False
        self._delivering: dict[int, str] = {}
        self._delivering_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = False
        #: One log line per journal outage, not one per failed write (see ``_journal_down``).
        self.faults = FaultLog(log)
        #: Deliveries whose outcome the journal could not take: id -> (tries, not before).
        self._held: dict[int, tuple[int, datetime]] = {}
        #: While set, no delivery runs: monotonic time of the next probe write, and its wait.
        self._paused_until: float | None = None
        self._probe_wait = _JOURNAL_PROBE_INITIAL
        #: Monotonic time of the last pass of the reader and of the delivery loop (health).
        self.beats: dict[str, float] = {}

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the reader, the lanes and the delivery loop (resuming from the cursor)."""
        if self._started:
            return
        self._started = True
        cursor = self.journal.get_cursor(CURSOR_NAME)
        self._dispatched = self._persisted = cursor
        for lane in self._lanes:
            lane.start()
        for name, target in (
            ("dispatch-reader", self._read_loop),
            ("deliveries", self._deliver_loop),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("dispatcher started at event %d with %d lanes", cursor, len(self._lanes))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work, finish what lanes hold, persist the cursor, wait for deliveries."""
        if not self._started or self._stopping.is_set():
            return
        self._stopping.set()
        self._wake_reader.set()
        self._wake_deliveries.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        for lane in self._lanes:
            lane.stop()
        for lane in self._lanes:
            lane.join(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(Exception):
            self._persist_cursor()
        self._lookup_pool.shutdown(wait=False, cancel_futures=True)
        # The delivery thread may outlive its join (a slow journal read): it must not add a
        # pool while we walk them, nor make one after (its deliveries would run after stop).
        with self._pools_lock:
            self._pools_closed = True
            pools = list(self._delivery_pools.values())
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        while time.monotonic() < deadline:
            with self._delivering_lock:
                if not self._delivering:
                    break
            time.sleep(0.02)

    def notify(self) -> None:
        """New events are in the journal: look now instead of at the next poll."""
        self._wake_reader.set()

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
            self._wake_reader.set()
            self._wake_deliveries.set()
            time.sleep(0.02)

    def _idle(self) -> bool:
        with self._state:
            busy = bool(self._in_flight) or self._queued > 0
            cursor = self._dispatched
        if busy or self._persisted < cursor or self.journal.events_after(cursor, limit=1):
            return False
        with self._delivering_lock:
            if self._delivering:
                return False
        now = self._wall_clock()
        return not any(
            self.journal.due_deliveries(now, limit=1, plugin=name)
            for name in self.plugins.implementers("log_call")
        )

    # -- reading and cursor ---------------------------------------------------------------
    def _read_loop(self) -> None:
        last_tick = 0.0
        while not self._stopping.is_set():
            self.beats["reader"] = time.monotonic()
            try:
                got = self._read_once()
                if time.monotonic() - last_tick >= self._tick_interval:
                    last_tick = time.monotonic()
                    self._tick()
                self._persist_cursor()
            except Exception as exc:
                if self._stopping.is_set():
                    return
                self._journal_down(exc)  # logged once per outage, not once per pass
                got = 0
                self._stopping.wait(1.0)
            if not got:
                self._wake_reader.wait(self._poll_interval)
                self._wake_reader.clear()

    def _read_once(self) -> int:
        with self._state:
            while len(self._in_flight) >= _MAX_IN_FLIGHT and not self._stopping.is_set():
                self._state.wait(0.5)
                self.beats["reader"] = time.monotonic()  # waiting for lanes is not wedged
            after = self._dispatched
        batch = self.journal.events_after(after, limit=500)
        for stored in batch:
            with self._state:
                self._in_flight.add(stored.seq)
                self._dispatched = stored.seq
                self._queued += 1
            self._lane_for_event(stored.event).put(_EventItem(stored))
        return len(batch)

    def _tick(self) -> None:
        for expired in self.originates.expire(self._wall_clock()):
            log.info("click-to-call %s: %s", expired.external_id, expired.error)
            self._tell_originate(expired)
        with self._tracker_lock:
            changes = list(self.tracker.tick(self._clock()))
        by_lane: dict[int, list[ChangeLike]] = {}
        for change in changes:
            index = self._lane_index(change.call.company_id, change.call.user_call_id)
            by_lane.setdefault(index, []).append(change)
        for index, items in by_lane.items():
            with self._state:
                self._queued += 1
            self._lanes[index].put(_ChangesItem(tuple(items)))

    def _safe_cursor(self) -> int:
        """Highest seq such that every event up to it is done."""
        with self._state:
            if self._in_flight:
                return min(self._in_flight) - 1
            return self._dispatched

    def _persist_cursor(self) -> None:
        cursor = self._safe_cursor()
        if cursor > self._persisted:
            self.journal.set_cursor(CURSOR_NAME, cursor)
            self._persisted = cursor

    def _finished_item(self, seq: int | None) -> None:
        with self._state:
            if seq is not None:
                self._in_flight.discard(seq)
            self._queued -= 1
            self._state.notify_all()

    def _lane_index(self, company_id: str | None, key: str) -> int:
        return hash((company_id or "", key)) % len(self._lanes)

    def _lane_for_event(self, event: AnyEvent) -> _Lane:
        if isinstance(event, CallEvent):
            return self._lanes[self._lane_index(event.company_id, event.call_id)]
        if isinstance(event, DeviceEvent):
            return self._lanes[self._lane_index(event.company_id, "device:" + event.device_id)]
        return self._lanes[0]

    # -- one event ------------------------------------------------------------------------
    def handle_event(self, stored: StoredEvent) -> None:
        """Everything one event causes, committed before it returns."""
        self._event_work(stored)()

    def _event_work(self, stored: StoredEvent) -> Callable[[], None]:
        """``handle_event`` as work a lane may retry: the tracker sees the event only once.

        The tracker takes an event it has seen as a repeat and reports nothing. Feeding it
        the event again after a failure further on (a journal write in ``_finish``) would
        leave undone whatever the failed try had not written yet (the call's deliveries), so
        the changes of the first successful ``apply`` are kept and only acting on them runs
        again (a repeated pop is harmless; deliveries are unique per call and plugin).
        """
        event = stored.event
        changes: list[ChangeLike] | None = None
        #: The key of the call the event went to (a reused user call id: its newest call's).
        key: str | None = None

        def work() -> None:
            nonlocal changes, key, event
            if isinstance(event, CallEvent):
                if changes is None:
                    event = self.originates.correlate(event, stored.received_at)
                    with self._tracker_lock:
                        changes = list(self.tracker.apply(event, stored.received_at))
                        key = self.tracker.key_for(event.company_id, event.call_id)
                self.handle_changes(changes)
                ext_id = event.ext_id or _external_id_of(event, changes)
                if ext_id:
                    where = key or call_key(event.company_id, event.call_id)
                    self._move_originate(event, ext_id, where, _tracked(event, ext_id, changes))
            elif isinstance(event, DeviceEvent):
                remember_device(self.journal, event)  # the agent's device, for click-to-call
                self.tracker.learn_device(event)  # the user's extension, for later calls
            elif (refused := self.originates.refuse(event, stored.received_at)) is not None:
                self._tell_originate(refused)  # SERI cmd_failed: the click-to-call failed
            self.plugins.pbx_event(event)

        return work

    def handle_changes(self, changes: Iterable[ChangeLike]) -> None:
        """Act on tracker changes, in order."""
        for change in changes:
            self._act(change)

    def _act(self, change: ChangeLike) -> None:
        call = change.call
        kind = change.kind
        if kind == "ringing":
            contacts = self._lookup(call)
            self._remember(call.key, contacts)
            self.journal.save_call(call)
            self._pop(call, contacts)
        elif kind in ("answered", "ended"):
            contacts = self._known_contacts(call)
            self.journal.save_call(call)
            self._pop(call, contacts)
        elif kind == "finished":
            self._finish(call)
        elif kind == "dropped":
            self.journal.save_call(call, settled=True)
            self._forget(call.key)
        else:
            log.warning("unknown tracker change %r for call %s; saved only", kind, call.key)
            self.journal.save_call(call)

    def _finish(self, call: Call) -> None:
        """Enqueue one delivery per log_call plugin, then mark the call settled."""
        with self._contacts_lock:
            known = self._contacts.get(call.key)
        contacts = known if known is not None else self._lookup(call)
        names = self.plugins.implementers("lookup_contact")
        record = build_record(call, *lookup_states(call, names, contacts, self.cache))
        payload = record.model_dump(mode="json")
        for name in self.plugins.implementers("log_call"):
            self.journal.enqueue_delivery(
                call_key=call.key, plugin=name, action="log_call", payload=payload
            )
        self.journal.save_call(call, settled=True)
        self._forget(call.key)
        self._wake_deliveries.set()

    def finish_unsettled(self, calls: Iterable[Call]) -> int:
        """Finish calls a crash left ended (with an outcome) but not settled; return how many.

        Such a call crashed between its "ended" and its "finished": the tracker, given it back,
        takes it as finished and would never say "finished" again, so its deliveries are
        enqueued here (a no-op for those that already exist). Held group legs have no outcome
        yet and are left to the tracker.
        """
        count = 0
        for call in calls:
            if call.state is CallState.ENDED and call.outcome is not None:
                self._finish(call)
                count += 1
        return count

    def _move_originate(self, event: CallEvent, external_id: str, key: str, tracked: bool) -> None:
        """A click-to-call's call (``key``) moved: update its Originate and tell its agent.

        Only the caller's leg moves it (``tracked``: the tracker gave the leg this request;
        or ``originate_belongs``): an internal callee's 16 may echo the same external id.
        """
        state = _ORIGINATE_STATE_BY_EVENT.get(event.ssn_event)
        if state is None:
            return
        current = self.journal.get_originate(external_id)
        if current is None or not (tracked or originate_belongs(event, current)):
            return
        if _ORIGINATE_RANK.get(current.state, 0) > _ORIGINATE_RANK[state]:
            return  # never move back (a late or repeated event)
        updated = self.journal.update_originate(
            external_id,
            state=state,
            user_call_id=event.call_id,
            call_key=key,
        )
        if updated is not None:
            self._tell_originate(updated)

    def _tell_originate(self, updated: Originate) -> None:
        """Send the agent's panel the request's new state (``call`` message)."""
        if not updated.extension:
            return
        data = {
            "external_id": updated.external_id,
            "state": updated.state,
            "user_call_id": updated.user_call_id,
            "number": updated.number,
            "crm": None if updated.crm is None else updated.crm.model_dump(mode="json"),
        }
        self._publish(updated.extension, "call", data)

    # -- pops and lookups -----------------------------------------------------------------
    def _pop(self, call: Call, contacts: dict[str, Contact]) -> None:
        if call.extension:
            data = {
                "state": call.state.value,
                "call": call.model_dump(mode="json"),
                "contacts": {k: c.model_dump(mode="json") for k, c in contacts.items()},
            }
            self._publish(call.extension, "pop", data)
        metrics.POPS_SENT.labels(call.state.value).inc()
        self.plugins.screen_pop(ScreenPop(call=call, contacts=contacts))

    def _publish(self, extension: str, kind: str, data: dict[str, Any]) -> None:
        event = self.journal.append_agent_event(extension, kind, data)
        self.bus.publish(event)

    @staticmethod
    def _number(call: Call) -> str:
        return call.remote_e164 or call.remote_number.strip()

    def _lookup(self, call: Call) -> dict[str, Contact]:
        """Each plugin's contact for the call's number, within the lookup budget.

        Cached answers come at once. Others run on the lookup pool; what is not back within
        ``lookup_budget`` is left out of this pop (and cached when it does come back, for the
        answer event and the next call).
        """
        names = self.plugins.implementers("lookup_contact")
        number = self._number(call)
        if not names or not number:
            return {}
        found: dict[str, Contact] = {}
        waiting: dict[Future[Contact | None], str] = {}
        for name in names:
            cached = self.cache.get((name, number))
            if cached is MISSING:
                future = self._start_lookup(name, number, call)
                if future is not None:
                    waiting[future] = name
                continue
            metrics.LOOKUPS.labels(name, "cache_hit").inc()
            if isinstance(cached, Contact):
                found[name] = cached
        if waiting:
            done, late = wait(waiting, timeout=self.settings.dispatch.lookup_budget)
            for future in done:
                contact = future.result()
                if contact is not None:
                    found[waiting[future]] = contact
            for future in late:
                metrics.LOOKUPS.labels(waiting[future], "timeout").inc()
                log.info(
                    "lookup by %s missed the %.1fs budget for call %s; popping without it",
                    waiting[future],
                    self.settings.dispatch.lookup_budget,
                    call.key,
                )
        return {name: found[name] for name in names if name in found}

    def _start_lookup(self, name: str, number: str, call: Call) -> Future[Contact | None] | None:
        """Run a lookup on the pool, or join the one already running for the same number."""
        key = (name, number)
        with self._lookups_lock:
            future = self._lookups.get(key)
            if future is not None:
                return future
            cached = self.cache.get(key)
            if cached is not MISSING:  # a lookup finished since we looked (it caches first)
                done: Future[Contact | None] = Future()
                done.set_result(cached if isinstance(cached, Contact) else None)
                return done
            try:
                future = self._lookup_pool.submit(self._lookup_one, name, number, call)
            except RuntimeError:  # the pool is shut down: we are stopping
                return None
            self._lookups[key] = future

        def forget(_: Future[Contact | None]) -> None:
            with self._lookups_lock:
                if self._lookups.get(key) is future:
                    del self._lookups[key]

        future.add_done_callback(forget)
        return future

    def _lookup_one(self, name: str, number: str, call: Call) -> Contact | None:
        """One plugin's lookup; errors are logged and not cached (the next call tries again)."""
        try:
            result = self.plugins.lookup_contact(name, number, call)
        except Exception as exc:
            metrics.LOOKUPS.labels(name, "error").inc()
            log.warning("lookup by %s failed: %s", name, _describe(exc))
            return None
        contact: Contact | None = None
        if isinstance(result, Contact):
            contact = result if result.connector else result.model_copy(update={"connector": name})
        elif result is not None:
            log.warning("lookup by %s returned %s, not a Contact", name, type(result).__name__)
            return None
        metrics.LOOKUPS.labels(name, "found" if contact is not None else "not_found").inc()
        self.cache.set((name, number), contact, self._ttl(name, contact))
        return contact

    def _ttl(self, name: str, contact: Contact | None) -> float:
        """How long a lookup's answer stays cached (a "no match" for less time), per plugin."""
        dispatch = self.settings.dispatch
        default = dispatch.cache_ttl if contact is not None else dispatch.cache_negative_ttl
        return self.plugins.lookup_ttl(name, contact is not None, default)

    def _known_contacts(self, call: Call) -> dict[str, Contact]:
        """Contacts already found for the call, or cached for its number: no CRM request."""
        with self._contacts_lock:
            known = self._contacts.get(call.key)
        names = self.plugins.implementers("lookup_contact")
        number = self._number(call)
        result = dict(known or {})
        for name in names:
            if name in result or not number:
                continue
            cached = self.cache.get((name, number))
            if isinstance(cached, Contact):
                result[name] = cached
        if result != (known or {}):
            self._remember(call.key, result)
        return {name: result[name] for name in names if name in result}

    def _remember(self, key: str, contacts: dict[str, Contact]) -> None:
        with self._contacts_lock:
            self._contacts[key] = contacts

    def _forget(self, key: str) -> None:
        with self._contacts_lock:
            self._contacts.pop(key, None)

    def _dead_letter(self, item: str, raw: str, error: BaseException) -> bool:
        """Keep what was given up on among rejected requests, then count it.

        The record is what lets the cursor pass the event, so it is retried (capped backoff)
        until it is written; False when the dispatcher stops first (the event stays below the
        cursor and is handled again after the restart).
        """
        delay = _EVENT_RETRY_INITIAL
        while True:
            try:
                self.journal.record_rejected(
                    raw=raw,
                    reason=f"{item} given up after retrying: {_describe(error)}",
                    source=DEAD_LETTER_SOURCE,
                )
            except Exception as exc:
                self.faults.report(
                    "events", f"{journal_fault(self.journal, exc)}; a dead letter waits", exc
                )
                if self._stopping.wait(delay):
                    return False
                delay = min(delay * 2, _EVENT_RETRY_CAP)
                continue
            metrics.EVENTS_FAILED.labels(item).inc()
            return True

    # -- deliveries -----------------------------------------------------------------------
    def _deliver_loop(self) -> None:
        while not self._stopping.is_set():
            self.beats["deliveries"] = time.monotonic()
            try:
                self._schedule_due()
            except Exception as exc:
                if self._stopping.is_set():
                    return
                self._journal_down(exc)
                self._stopping.wait(1.0)
            self._wake_deliveries.wait(self._poll_interval * 2)
            self._wake_deliveries.clear()

    def _pool_for(self, plugin: str) -> ThreadPoolExecutor:
        """The plugin's delivery pool; RuntimeError once ``stop`` shut the pools down."""
        with self._pools_lock:
            if self._pools_closed:
                raise RuntimeError("the dispatcher is stopping")
            pool = self._delivery_pools.get(plugin)
            if pool is None:
                pool = ThreadPoolExecutor(
                    max_workers=_DELIVERY_THREADS_PER_PLUGIN,
                    thread_name_prefix=f"deliver-{plugin}",
                )
                self._delivery_pools[plugin] = pool
            return pool

    def _schedule_due(self) -> None:
        if not self._journal_up():
            return
        now = self._wall_clock()
        for plugin in self.plugins.implementers("log_call"):
            with self._delivering_lock:
                busy = {i for i, p in self._delivering.items() if p == plugin}
            free = _DELIVERY_THREADS_PER_PLUGIN * 2 - len(busy)
            if free <= 0:
                continue
            due = self.journal.due_deliveries(now, limit=free + len(busy), plugin=plugin)
            for delivery in due:
                if delivery.id in busy or free <= 0 or self._is_held(delivery.id, now):
                    continue
                if self.wrapups.deferred(delivery, now):
                    continue
                with self._delivering_lock:
                    self._delivering[delivery.id] = plugin
                try:
                    self._pool_for(plugin).submit(self._run_delivery, delivery)
                except RuntimeError:  # shutting down
                    with self._delivering_lock:
                        self._delivering.pop(delivery.id, None)
                    return
                free -= 1

    def _run_delivery(self, delivery: Delivery) -> None:
        try:
            self.run_delivery(delivery)
        except Exception as exc:
            self._journal_down(exc)
            self._hold(delivery)
        finally:
            with self._delivering_lock:
                self._delivering.pop(delivery.id, None)
            self._wake_deliveries.set()

    # -- a journal that cannot be written -------------------------------------------------
    def _journal_down(self, exc: BaseException) -> None:
        """A write failed: pause deliveries until a probe write succeeds; log it once."""
        with self._state:
            if self._paused_until is None:
                self._probe_wait = _JOURNAL_PROBE_INITIAL
                self._paused_until = time.monotonic() + self._probe_wait
        self.faults.report(
            "journal",
            f"{journal_fault(self.journal, exc)}; deliveries paused, events wait in the journal",
            exc,
        )

    def _journal_up(self) -> bool:
        """Whether deliveries may run: not paused, or a probe write just succeeded."""
        with self._state:
            paused_until = self._paused_until
        if paused_until is None:
            return True
        if time.monotonic() < paused_until:
            return False
        try:
            self.journal.check_writable()
        except Exception as exc:
            with self._state:
                self._probe_wait = min(self._probe_wait * 2, _JOURNAL_PROBE_CAP)
                self._paused_until = time.monotonic() + self._probe_wait
            self.faults.report(
                "journal", f"{journal_fault(self.journal, exc)}; deliveries still paused", exc
            )
            return False
        with self._state:
            self._paused_until = None
        self.faults.clear("journal", "journal writable again; deliveries resume")
        return True

    def _hold(self, delivery: Delivery) -> None:
        """Its outcome was not recorded: back off as after a failure, in memory.

        The journal still says "due", so without this the delivery would run again at once,
        in a loop, each time writing the activity again where the connector cannot tell.
        """
        with self._delivering_lock:
            tries = self._held.get(delivery.id, (0, self._wall_clock()))[0] + 1
            wait = self.policy.delay(delivery.attempts + tries)
            self._held[delivery.id] = (tries, self._wall_clock() + timedelta(seconds=wait))
        metrics.DELIVERY_ATTEMPTS.labels(delivery.plugin, "unrecorded").inc()
        log.debug("delivery %d held back %.1fs: its outcome was not recorded", delivery.id, wait)

    def _is_held(self, delivery_id: int, now: datetime) -> bool:
        with self._delivering_lock:
            held = self._held.get(delivery_id)
        return held is not None and held[1] > now

    def run_delivery(self, delivery: Delivery) -> None:
        """One attempt of one delivery, and its outcome written to the journal."""
        plugin = delivery.plugin
        try:
            record = record_from_payload(delivery.payload)
        except ValidationError as exc:
            self.journal.fail_delivery(
                delivery.id,
                error=f"invalid payload: {exc.error_count()} error(s)",
                next_attempt_at=None,
            )
            log.error("delivery %d (%s): invalid payload, dead", delivery.id, plugin)
            return
        hint: float | None = None
        try:
            if revision_of(delivery.action) is not None:
                result = self.wrapups.update(delivery, record)
            else:
                record = self.wrapups.attach(record)
                lookup = self.plugins.lookup_contact
                record = settle_lookup(record, plugin, lookup, self.cache, self._ttl)
                result = self.plugins.log_call(plugin, record)
        except PermanentError as exc:
            metrics.DELIVERY_ATTEMPTS.labels(plugin, "dead").inc()
            self.journal.fail_delivery(delivery.id, error=_describe(exc), next_attempt_at=None)
            log.error(
                "delivery %d of call %s to %s refused for good: %s",
                delivery.id,
                delivery.call_key,
                plugin,
                _describe(exc),
            )
            return
        except RetryLater as exc:
            hint = exc.retry_after
            error = _describe(exc)
        except Exception as exc:
            error = _describe(exc)
        else:
            metrics.DELIVERY_ATTEMPTS.labels(plugin, "done").inc()
            outcome = with_revision(_result_json(result, plugin), record)
            self.journal.complete_delivery(delivery.id, outcome)
            with self._delivering_lock:
                self._held.pop(delivery.id, None)
            log.info("call %s logged by %s", delivery.call_key, plugin)
            return
        now = self._wall_clock()
        due = self.policy.next_attempt(
            attempts_done=delivery.attempts + 1,
            since=delivery.retried_at or delivery.created_at,
            now=now,
            hint=hint,
        )
        metrics.DELIVERY_ATTEMPTS.labels(plugin, "retry" if due is not None else "dead").inc()
        self.journal.fail_delivery(delivery.id, error=error, next_attempt_at=due)
        with self._delivering_lock:
            self._held.pop(delivery.id, None)
        if due is None:
            log.error(
                "delivery %d of call %s to %s is dead after %d attempt(s): %s",
                delivery.id,
                delivery.call_key,
                plugin,
                delivery.attempts + 1,
                error,
            )
        else:
            log.warning(
                "delivery %d of call %s to %s failed (attempt %d), retrying in %.1fs: %s",
                delivery.id,
                delivery.call_key,
                plugin,
                delivery.attempts + 1,
                (due - now).total_seconds(),
                error,
            )


def _result_json(result: object, plugin: str) -> dict[str, Any] | None:
    """What a log_call returned, as JSON for the delivery row."""
    if result is None:
        return None
    if isinstance(result, ActivityRef):
        if not result.connector:
            result = result.model_copy(update={"connector": plugin})
        return result.model_dump(mode="json")
    if isinstance(result, dict):
        return {str(k): v for k, v in result.items()}
    return {"value": repr(result)[:_MAX_ERROR]}


class _Lane:
    """One worker thread and its queue: the events of a call always go to the same lane."""

    def __init__(self, dispatcher: Dispatcher, index: int) -> None:
        import queue

        self._dispatcher = dispatcher
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"dispatch-{index}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, item: _Item) -> None:
        self._queue.put(item)

    def stop(self) -> None:
        self._queue.put(None)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        dispatcher = self._dispatcher
        while True:
            item = self._queue.get()
            if item is None:
                return
            if dispatcher._stopping.is_set():
                # Leave the rest to the next start: the cursor has not moved past it.
                continue
            if isinstance(item, _EventItem):
                stored = item.stored
                self._attempt(
                    dispatcher._event_work(stored),
                    stored.seq,
                    partial(_dead_letter_event, stored),
                )
            else:
                self._attempt(
                    partial(dispatcher.handle_changes, item.changes),
                    None,
                    partial(_dead_letter_changes, item.changes),
                )

    def _attempt(
        self, work: Callable[[], None], seq: int | None, letter: Callable[[], tuple[str, str]]
    ) -> None:
        """Run ``work`` until it succeeds, retrying with capped exponential backoff.

        Only this lane waits: the reader keeps feeding the other lanes, and the cursor stays
        below ``seq`` (it is in flight) until the work is done or its dead letter is kept.
        Past ``event_retry_max_age`` the item is given up on; ``letter`` says what to keep.
        """
        dispatcher = self._dispatcher
        max_age = dispatcher.settings.dispatch.event_retry_max_age
        started = time.monotonic()
        delay = _EVENT_RETRY_INITIAL
        attempt = 0
        while True:
            attempt += 1
            try:
                work()
                if attempt > 1:
                    dispatcher.faults.clear("events", "events are handled again")
                break
            except Exception as exc:
                if dispatcher._stopping.is_set():
                    return  # not done: handled again after the restart
                age = time.monotonic() - started
                if age >= max_age:
                    log.exception(
                        "event %s failed %d times over %.0fs; keeping it as a dead letter",
                        seq,
                        attempt,
                        age,
                    )
                    item, raw = letter()
                    if not dispatcher._dead_letter(item, raw, exc):
                        return
                    break
                wait = min(delay, _EVENT_RETRY_CAP)
                # One line per outage, not one per event and attempt.
                dispatcher.faults.report(
                    "events",
                    f"{journal_fault(dispatcher.journal, exc)}; events wait and are tried again",
                    exc,
                )
                log.debug(
                    "event %s failed (attempt %d), trying again in %.1fs: %s",
                    seq,
                    attempt,
                    wait,
                    _describe(exc),
                )
                if dispatcher._stopping.wait(wait):
                    return
                delay = min(delay * 2, _EVENT_RETRY_CAP)
        dispatcher._finished_item(seq)


def _dead_letter_event(stored: StoredEvent) -> tuple[str, str]:
    """("event", what to keep of it): enough to find it and feed it again by hand."""
    body = {"seq": stored.seq, "dedup_key": stored.dedup_key, "raw": stored.raw}
    return "event", json.dumps(body, separators=(",", ":"))


def _dead_letter_changes(changes: Sequence[ChangeLike]) -> tuple[str, str]:
    """("changes", the calls and kinds of tracker changes given up on)."""
    body = [{"kind": c.kind, "call": c.call.key} for c in changes]
    return "changes", json.dumps(body, separators=(",", ":"))
