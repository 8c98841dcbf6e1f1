"""What an event causes: tracker changes acted on, pops, click-to-call states, deliveries.

A lane runs ``Reactions.event_work`` for each event: the event goes to the tracker, and what
the tracker reports is acted on: ``ringing`` -> a time-boxed, cached lookup (``Lookups``),
then the pop (agent stream first, it is what the agent waits for, then the ``screen_pop``
hooks); ``answered``/``ended`` -> the pop again from the contacts already known (no CRM
request); ``finished`` -> one delivery per ``log_call`` plugin, enqueued in the journal;
``dropped`` -> nothing to write. Every event also goes to the ``pbx_event`` hooks, and the
events of a click-to-call move its Originate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from .. import metrics
from ..companies.registry import agent_key
from ..journal.base import Journal, StoredEvent
from ..models import Call, CallState, Contact, Originate, ScreenPop
from ..plugins.manager import Plugins
from ..settings import RecordingSettings
from ..voispeed.events import AnyEvent, CallEvent, DeviceEvent
from .bus import AgentBus
from .devices import remember_device
from .lookups import Lookups
from .originates import OriginateMatcher
from .partitions import PartitionedTracker
from .recordings import default_reference
from .records import build_record, by_plugin_name, lookup_states
from .tracker import Change, Tracker, call_key
from .tracker_leg import originate_belongs

log = logging.getLogger("callbridge.engine.dispatcher.reactions")

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


def _external_id_of(event: CallEvent, changes: Sequence[Change]) -> str | None:
    """The external id the tracker tied to the event's user call (an event without ``ext_id``
    of a click-to-call matched on its 17)."""
    for change in changes:
        call = change.call
        if call.user_call_id == event.call_id and call.external_id:
            return call.external_id
    return None


def _tracked(event: CallEvent, external_id: str, changes: Sequence[Change]) -> bool:
    """Whether the tracker gave the event's leg the originate with this external id."""
    return any(
        c.call.user_call_id == event.call_id
        and c.call.originate is not None
        and c.call.originate.external_id == external_id
        for c in changes
    )


#: Seconds the engine waits, once per company, for its own reload to bring a company whose
#: events the ingress (reloaded a moment earlier) already takes.
RELOAD_GRACE = 30.0


class Reactions:
    """Feeds events to the tracker and acts on its changes; lanes call it, one call per lane."""

    def __init__(
        self,
        journal: Journal,
        tracker: Tracker | PartitionedTracker,
        plugins: Plugins,
        *,
        bus: AgentBus,
        lookups: Lookups,
        originates: OriginateMatcher,
        on_enqueued: Callable[[], None],
        recordings: RecordingSettings | None = None,
    ) -> None:
        self.journal = journal
        self.tracker = tracker
        self.plugins = plugins
        self.bus = bus
        self.lookups = lookups
        self.originates = originates
        #: The tracker is not thread-safe; lanes and the ticking reader share it.
        self.tracker_lock = threading.Lock()
        self._on_enqueued = on_enqueued
        self.recordings = recordings or RecordingSettings()
        self._unknown_companies: set[str | None] = set()
        #: Company -> when its first event came before this engine knew it (a reload ahead).
        self._pending: dict[str, float] = {}
        self._pending_lock = threading.Lock()

    def event_work(self, stored: StoredEvent) -> Callable[[], None]:
        """Everything one event causes, as work a lane may retry: the tracker sees it once.

        The tracker takes an event it has seen as a repeat and reports nothing. Feeding it
        the event again after a failure further on (a journal write in ``finish``) would
        leave undone whatever the failed try had not written yet (the call's deliveries), so
        the changes of the first successful ``apply`` are kept and only acting on them runs
        again (a repeated pop is harmless; deliveries are unique per call and plugin).
        """
        changes: list[Change] | None = None
        #: The key of the call the event went to (a reused user call id: its newest call's).
        key: str | None = None
        #: The event with its company's name, once found (a reload may be awaited first).
        found: list[AnyEvent | None] = []

        def work() -> None:
            nonlocal changes, key
            if not found:
                found.append(self._with_company(stored.event))
            event = found[0]
            if event is None:
                return  # no configured company: journaled, reaches no plugin
            if isinstance(event, CallEvent):
                if changes is None:
                    event = found[0] = self.originates.correlate(event, stored.received_at)
                    with self.tracker_lock:
                        changes = list(self.tracker.apply(event, stored.received_at))
                        key = self.tracker.key_for(event.company_id, event.call_id, event.company)
                self.handle_changes(changes)
                ext_id = event.ext_id or _external_id_of(event, changes)
                if ext_id:
                    where = key or call_key(event.company_id, event.call_id, event.company)
                    self._move_originate(event, ext_id, where, _tracked(event, ext_id, changes))
            elif isinstance(event, DeviceEvent):
                remember_device(self.journal, event)  # the agent's device, for click-to-call
                self.tracker.learn_device(event)  # the user's extension, for later calls
            elif (refused := self.originates.refuse(event, stored.received_at)) is not None:
                self.tell_originate(refused)  # SERI cmd_failed: the click-to-call failed
            self.plugins.pbx_event(event, event.company)

        return work

    def handle_changes(self, changes: Iterable[Change]) -> None:
        """Act on tracker changes, in order."""
        for change in changes:
            self._act(change)

    def _act(self, change: Change) -> None:
        call = change.call
        kind = change.kind
        if kind == "ringing":
            contacts = self.lookups.lookup(call)
            self.lookups.remember(call.key, contacts)
            # The pop before the save: a crash between the two (a worker killed) leaves the
            # call unsaved, so whoever handles the event again pops it again; the other way
            # round, the saved call would take the event as a repeat and never pop.
            self._pop(call, contacts)
            self.journal.save_call(call)
        elif kind in ("answered", "ended"):
            contacts = self.lookups.known(call)
            self.journal.save_call(call)
            self._pop(call, contacts)
        elif kind == "finished":
            self.finish(call)
        elif kind == "dropped":
            self.journal.save_call(call, settled=True)
            self.lookups.forget(call.key)
        else:
            log.warning("unknown tracker change %r for call %s; saved only", kind, call.key)
            self.journal.save_call(call)

    def _with_company(self, event: AnyEvent) -> AnyEvent | None:
        """The event with its company's name; None for a company the file does not have.

        The ingress names the company by its token; an event without a name (the MySQL
        source) is the company whose id it carries. Without a companies file every event is
        ``default``'s.
        """
        company = event.company
        companies = self.plugins.companies
        if company is not None and self._missing(company):
            return event  # removed: tracked, reaches no plugin
        if company is None:
            company = companies.name_for(event.company_id)
        if company is None:
            if event.company_id not in self._unknown_companies:
                self._unknown_companies.add(event.company_id)
                log.warning(
                    "events of PBX company %r belong to no configured company: kept in the "
                    "journal, not tracked (logged once per company id)",
                    event.company_id,
                )
            return None
        return event if company == event.company else event.model_copy(update={"company": company})

    def _missing(self, company: str) -> bool:
        """Whether ``company`` (named by the ingress) is not, or no longer, configured here."""
        companies = self.plugins.companies
        if companies.single or company in companies:
            return False
        return company in self.plugins.retired or not self._await_company(company)

    def _await_company(self, company: str) -> bool:
        """Wait for this engine's reload to bring ``company``; True when it came.

        The ingress may reload a moment before the engine and take a new company's events
        first: they wait here rather than reach no plugin. The wait is bounded, once per
        company: a company removed while callbridge was stopped (its events still in the
        journal) delays its first event only.
        """
        with self._pending_lock:
            first = self._pending.setdefault(company, time.monotonic())
        while time.monotonic() - first < RELOAD_GRACE:
            if company in self.plugins.companies:
                return True
            time.sleep(0.05)
        if company in self.plugins.companies:
            return True
        with self._pending_lock:
            if company not in self._unknown_companies:
                self._unknown_companies.add(company)
                log.warning(
                    "events of company %r, which the companies file no longer has: tracked, "
                    "reach no plugin (logged once)",
                    company,
                )
        return False

    def finish(self, call: Call) -> None:
        """Enqueue one delivery per log_call plugin, then mark the call settled."""
        known = self.lookups.remembered(call.key)
        contacts = known if known is not None else self.lookups.lookup(call)
        names = self.plugins.implementers("lookup_contact", call.company)
        record = build_record(call, *lookup_states(call, names, contacts, self.lookups.cache))
        self._note_recording(call)
        payload = record.model_dump(mode="json")
        for name in self.plugins.implementers("log_call", call.company):
            self.journal.enqueue_delivery(
                call_key=call.key, plugin=name, action="log_call", payload=payload
            )
        self.journal.save_call(call, settled=True)
        self.lookups.forget(call.key)
        self._on_enqueued()

    def _note_recording(self, call: Call) -> None:
        """A call the PBX recorded (the tables' flags, or a click-to-call placed recording)
        gets the default reference, unless one is known; its ``log_call`` attaches it."""
        placed = call.originate is not None and call.originate.record
        if (call.recorded or placed) and self.journal.get_recording(call.key) is None:
            reference = default_reference(self.recordings, call)
            self.journal.save_recording(call.key, reference, datetime.now(UTC))

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
                self.finish(call)
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
        if current is None or current.company != (event.company or "default"):
            return  # another company's request: its events never move it
        if not (tracked or originate_belongs(event, current)):
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
            self.tell_originate(updated)

    def tell_originate(self, updated: Originate) -> None:
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
        self._publish(agent_key(updated.company, updated.extension), "call", data)

    def _pop(self, call: Call, found: dict[str, Contact]) -> None:
        contacts = by_plugin_name(found)  # what the agent's page and the plugins look up
        if call.extension:
            data = {
                "state": call.state.value,
                "call": call.model_dump(mode="json"),
                "contacts": {k: c.model_dump(mode="json") for k, c in contacts.items()},
            }
            self._publish(agent_key(call.company, call.extension), "pop", data)
        metrics.POPS_SENT.labels(call.state.value).inc()
        metrics.COMPANY_POPS.labels(call.company).inc()
        self.plugins.screen_pop(ScreenPop(call=call, contacts=contacts))

    def _publish(self, extension: str, kind: str, data: dict[str, Any]) -> None:
        event = self.journal.append_agent_event(extension, kind, data)
        self.bus.publish(event)
