"""The journal: callbridge's durable memory, behind one interface.

Everything that must survive a crash lives here: accepted events (before the PBX gets its
200), rejected requests (for inspection), calls, originates (click-to-call requests) and
deliveries (one per call x plugin x action, with their retry state), and the agent event
stream (so an SSE reconnect with ``Last-Event-ID`` can replay).

SQLite in WAL mode is the embedded default (``journal/sqlite/``). Another backend (Redis
Streams, ``journal/redis/``) implements this same class; the tracker, dispatcher and HTTP
service only ever see ``Journal``. How both store an event is in ``journal/codec.py``.

Concurrency contract: every method is thread-safe. ``append_event`` returns only once the
event is durable (fsynced); implementations are expected to group concurrent appends into one
commit so that many ingress requests share one fsync.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..models import Call, Originate, WrapUp
from ..voispeed.events import AnyEvent
from .tenancy import CompanyData

if TYPE_CHECKING:
    from .sharing import WorkShare

#: The cursor of the dispatcher, the consumer of accepted events.
DISPATCHER_CURSOR = "dispatcher"
#: Cursors named like this are positions in an external source (``mysql:<db>``: a row id in
#: the PBX's database), not in the journal's events, so they do not hold events back.
SOURCE_CURSOR_PREFIXES = ("mysql:",)
#: ``ring(extension, id)``: an agent message was appended (``None, 0``: re-read everything).
AgentBell = Callable[[str | None, int], None]


class JournalClosedError(RuntimeError):
    """A write was attempted on a journal that was closed (or whose writer died)."""


class DuplicateOriginateError(ValueError):
    """``create_originate`` for an external id that already exists.

    Every backend raises this one error, so the HTTP service and the engine handle a repeated
    click-to-call id the same way whichever journal holds it.
    """


class WrapUpConflictError(ValueError):
    """``save_wrapup`` with a revision that is not the next one (a form saved on stale data).

    ``current`` is the revision the journal holds (0: none), so the caller can say which.
    """

    def __init__(self, call_key: str, given: int, current: int) -> None:
        super().__init__(
            f"wrap-up of call {call_key}: revision {given} given, the journal holds "
            f"revision {current} (send revision {current + 1} to change it)"
        )
        self.current = current


def next_wrapup(stored: str | None, wrapup: WrapUp) -> tuple[WrapUp, bool]:
    """What ``save_wrapup`` keeps, from the stored JSON: (the wrap-up, whether to write it).

    The next revision is written; the stored revision again with the same content is a
    repeated request (kept as it is, nothing written); anything else is a conflict. Backends
    call this inside their atomic write, so two agents' saves never both become revision n.
    """
    current = None if stored is None else WrapUp.model_validate_json(stored)
    revision = 0 if current is None else current.revision
    if wrapup.revision == revision + 1:
        return wrapup, True
    if current is not None and wrapup.revision == revision and current.same_content(wrapup):
        return current, False
    raise WrapUpConflictError(wrapup.call_key, wrapup.revision, revision)


class DeliveryState(StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"


#: Seconds within which an event with the same dedup key is a repeat (``CALLBRIDGE_DEDUP_WINDOW``).
#: Trigger retries and PBX re-sends come within seconds or minutes; the same key later is a new
#: event, since the PBX reuses user call ids (its counters restart, and so do the monitor
#: tables' AUTO_INCREMENT ids), and a later call can have the same id, numbers and identity.
DEFAULT_DEDUP_WINDOW = 3600.0


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Outcome of ``append_event``: the event's sequence number and whether it was a repeat."""

    seq: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An accepted event as the journal holds it."""

    seq: int
    received_at: datetime
    source: str
    dedup_key: str
    raw: dict[str, str]
    event: AnyEvent


@dataclass(frozen=True, slots=True)
class RejectedRequest:
    """A request the ingress refused, kept for inspection."""

    id: int
    received_at: datetime
    source: str
    remote: str | None
    reason: str
    raw: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One piece of plugin work for one call (``log_call`` today) and its retry state."""

    id: int
    call_key: str
    plugin: str
    action: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_error: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    #: When a dead delivery was last made pending again by hand (its age counts from there).
    retried_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """One message on an agent's event stream; ``id`` orders them for replay."""

    id: int
    extension: str
    at: datetime
    kind: str
    data: dict[str, Any]


def check_originate_changes(changes: Mapping[str, Any]) -> None:
    """Refuse changes to fields an originate does not have, or to its external id."""
    unknown = set(changes) - set(Originate.model_fields) | ({"external_id"} & set(changes))
    if unknown:
        raise ValueError(f"cannot change originate field(s): {', '.join(sorted(unknown))}")


def changed_originate(
    stored: str, only_if: Collection[str] | None, changes: Mapping[str, Any]
) -> tuple[Originate, bool]:
    """The originate after ``update_originate``'s changes, from its stored JSON, and whether
    it changed (not when its state is outside ``only_if``). Backends write it atomically."""
    current = Originate.model_validate_json(stored)
    if only_if is not None and current.state not in only_if:
        return current, False
    return Originate.model_validate({**current.model_dump(), **changes}), True


def events_floor(cursors: Mapping[str, int]) -> int:
    """The highest event seq every consumer of events is past (0: none may be pruned).

    The dispatcher's cursor must exist (a journal it never read keeps all its events); any
    other consumer's cursor holds events back too, except positions in external sources.
    """
    if DISPATCHER_CURSOR not in cursors:
        return 0
    consumers = [
        seq
        for name, seq in cursors.items()
        if not any(name.startswith(prefix) for prefix in SOURCE_CURSOR_PREFIXES)
    ]
    return max(0, min(consumers))


class Journal(CompanyData):
    """Durable state of callbridge. All methods are thread-safe. (A company's data apart:
    ``CompanyData``, ``journal/tenancy.py``.)"""

    # -- events ---------------------------------------------------------------------------
    def append_event(
        self,
        event: AnyEvent,
        *,
        raw: Mapping[str, str],
        source: str = "http",
        received_at: datetime | None = None,
        company: str | None = None,
    ) -> AppendResult:
        """Store an accepted event durably; a repeat changes nothing.

        A repeat is an event with the same dedup key as a stored one whose ``received_at`` is
        less than the journal's dedup window away (``DEFAULT_DEDUP_WINDOW``); it gets the
        stored event's seq with ``duplicate=True``. The same key further away is a new event.
        ``company``: the company's name when the caller knows it (else ``company_of(event)``).
        """
        return self.submit_event(
            event, raw=raw, source=source, received_at=received_at, company=company
        ).result()

    @abc.abstractmethod
    def submit_event(
        self,
        event: AnyEvent,
        *,
        raw: Mapping[str, str],
        source: str = "http",
        received_at: datetime | None = None,
        company: str | None = None,
    ) -> Future[AppendResult]:
        """``append_event`` without waiting: the future resolves once the event is durable.

        The ingress awaits this future on its event loop instead of parking a worker thread
        per request; each backend hands out its writer's own future (SQLite's group commit,
        Redis's pipelined writer).
        """

    @abc.abstractmethod
    def events_after(self, seq: int, limit: int = 500) -> list[StoredEvent]:
        """Accepted events with a sequence number above ``seq``, oldest first."""

    @abc.abstractmethod
    def last_seq(self) -> int:
        """The highest sequence number taken so far (0 for an empty journal)."""

    @abc.abstractmethod
    def get_cursor(self, name: str) -> int:
        """A consumer's high-water mark (0 when it never ran)."""

    @abc.abstractmethod
    def set_cursor(self, name: str, seq: int) -> None:
        """Move a consumer's high-water mark (durably)."""

    # -- rejected requests ----------------------------------------------------------------
    @abc.abstractmethod
    def record_rejected(
        self,
        *,
        raw: str,
        reason: str,
        source: str = "http",
        remote: str | None = None,
        company: str | None = None,
    ) -> int:
        """Keep a refused request (secrets already removed) and return its id.

        ``company``: whose it is, when known (a request with a company's valid token); a
        request of nobody's (a wrong token) has none and is exported with no company."""

    @abc.abstractmethod
    def list_rejected(self, limit: int = 100) -> list[RejectedRequest]:
        """Most recent rejected requests first."""

    # -- calls ----------------------------------------------------------------------------
    @abc.abstractmethod
    def save_call(self, call: Call, *, settled: bool = False, company: str | None = None) -> None:
        """Insert or replace the tracker's view of a call. ``company``: the call's company (else
        ``company_of(call)``), fixed by the first save.

        ``settled=True`` says the dispatcher is done with the call (its deliveries are
        enqueued, or it was dropped); a settled call stays settled and is no longer "open".
        """

    @abc.abstractmethod
    def get_call(self, key: str) -> Call | None:
        """One call by key."""

    @abc.abstractmethod
    def is_settled(self, key: str) -> bool:
        """Whether the dispatcher is done with this call (see ``save_call``)."""

    @abc.abstractmethod
    def list_calls(self, limit: int = 50, *, open_only: bool = False) -> list[Call]:
        """Most recent calls first; ``open_only`` keeps those not yet settled.

        A call that ended but is not settled (a missed group leg held in its window) is still
        open: the tracker must get it back after a restart to finish or drop it.
        """

    # -- originates -----------------------------------------------------------------------
    @abc.abstractmethod
    def create_originate(self, originate: Originate, *, company: str | None = None) -> None:
        """Store a click-to-call request before its SOAP command is sent (for ``company``:
        the API token's; else ``company_of(originate)``).

        Raises ``DuplicateOriginateError`` when one with this external id exists already.
        """

    @abc.abstractmethod
    def get_originate(self, external_id: str) -> Originate | None:
        """One originate by external id."""

    @abc.abstractmethod
    def update_originate(
        self, external_id: str, *, only_if: Collection[str] | None = None, **changes: Any
    ) -> Originate | None:
        """Change fields of an originate (state, error, user_call_id); returns the new one.

        ``only_if``: change it only while its state is one of these (else return it as it is),
        checked and written atomically, so that an expiry never overwrites an event's move.
        """

    @abc.abstractmethod
    def recent_originates(self, since: datetime) -> list[Originate]:
        """Originates created at or after ``since``, oldest first.

        For click-to-call correlation, expiry and repeated clicks, which look minutes back.
        """

    # -- wrap-ups -------------------------------------------------------------------------
    @abc.abstractmethod
    def save_wrapup(self, wrapup: WrapUp, *, company: str | None = None) -> WrapUp:
        """Keep the agent's wrap-up of a call durably; returns what the journal holds.
        ``company``: else the company of the call it is about, else ``default``.

        Only the next revision is written (``next_wrapup``): a repeat of the stored one is
        returned unchanged, anything else raises ``WrapUpConflictError``. Atomic.
        """

    @abc.abstractmethod
    def get_wrapup(self, call_key: str) -> WrapUp | None:
        """The latest wrap-up of a call, if any."""

    # -- recordings -----------------------------------------------------------------------
    @abc.abstractmethod
    def save_recording(self, call_key: str, reference: str, at: datetime) -> bool:
        """Keep where the PBX recorded a call (its recording reference); durable, atomic.

        Returns whether it changed (False for the reference already held): the caller then
        enqueues the amendments of activities written without it (``engine/recordings.py``).
        """

    @abc.abstractmethod
    def get_recording(self, call_key: str) -> str | None:
        """The recording reference of a call, if one is known."""

    # -- deliveries -----------------------------------------------------------------------
    @abc.abstractmethod
    def enqueue_delivery(
        self,
        *,
        call_key: str,
        plugin: str,
        action: str,
        payload: dict[str, Any],
        company: str | None = None,
    ) -> Delivery:
        """Create the delivery for (call, plugin, action), or return the existing one.

        ``company``: else the company of the call (``call_key``), else ``default``."""

    @abc.abstractmethod
    def due_deliveries(
        self, now: datetime, limit: int = 100, *, plugin: str | None = None
    ) -> list[Delivery]:
        """Pending deliveries whose next attempt time has come, oldest first.

        ``plugin`` keeps one plugin's: the dispatcher asks per plugin, so that a plugin with
        a backlog never hides another's due work behind ``limit``.
        """

    @abc.abstractmethod
    def complete_delivery(self, delivery_id: int, result: dict[str, Any] | None) -> None:
        """Mark a delivery done with what the plugin returned."""

    @abc.abstractmethod
    def fail_delivery(
        self, delivery_id: int, *, error: str, next_attempt_at: datetime | None
    ) -> None:
        """Record a failed attempt; ``next_attempt_at=None`` makes the delivery dead."""

    @abc.abstractmethod
    def get_delivery(self, delivery_id: int) -> Delivery | None:
        """One delivery by id."""

    @abc.abstractmethod
    def list_deliveries(
        self,
        *,
        state: DeliveryState | None = None,
        call_keys: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Deliveries, newest first, optionally of one state or for some calls."""

    def delivery_counts(self) -> list[tuple[str, str, int]]:
        """(plugin, state, count) for every plugin and state, for ``/metrics``.

        The default counts the most recent deliveries; backends override it with a query.
        """
        counts: dict[tuple[str, str], int] = {}
        for delivery in self.list_deliveries(limit=100_000):
            key = (delivery.plugin, delivery.state.value)
            counts[key] = counts.get(key, 0) + 1
        return [(plugin, state, n) for (plugin, state), n in sorted(counts.items())]

    @abc.abstractmethod
    def reschedule_delivery(self, delivery_id: int, at: datetime) -> bool:
        """Move a pending delivery's next attempt to ``at`` without counting an attempt.

        For work that waits on something else (an agent's wrap-up, the activity an update
        amends), not on a failure. False when the delivery is not pending.
        """

    @abc.abstractmethod
    def retry_delivery(self, delivery_id: int) -> bool:
        """Make a dead delivery pending again, due now. False when it was not dead."""

    # -- agent event stream ---------------------------------------------------------------
    @abc.abstractmethod
    def append_agent_event(
        self, extension: str, kind: str, data: dict[str, Any], *, company: str | None = None
    ) -> AgentEvent:
        """Add a message to an agent's stream (pops, click-to-call state).

        Each company has its own agents' streams (extension 201 of two companies are two
        people); ``company`` None is ``default``."""

    @abc.abstractmethod
    def agent_events_after(
        self, extension: str, after_id: int, limit: int = 200, *, company: str | None = None
    ) -> list[AgentEvent]:
        """Messages for one agent of ``company`` (None: ``default``) with ids above
        ``after_id``, oldest first (SSE replay)."""

    def listen_agent_bells(self, ring: AgentBell) -> Callable[[], None] | None:
        """Call ``ring(extension, id)`` whenever any process appends an agent message.

        For backends shared by several processes (Redis), so an HTTP service can wake its
        agent streams when an engine elsewhere writes: ``ring(None, 0)`` means "messages may
        have been missed, every stream should re-read". Returns the function that stops
        listening, or None when the backend cannot (SQLite: one machine, where the engine's
        own bus rings the streams).
        """
        return None

    # -- life cycle -----------------------------------------------------------------------
    @abc.abstractmethod
    def check_writable(self) -> None:
        """Raise when the journal cannot take writes (for ``/readyz``)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and release resources."""

    def work_share(self, worker: str | None = None) -> WorkShare | None:
        """A handle for one of several engine workers sharing this journal, or None when
        only one engine may use it (SQLite). See ``journal/sharing.py``."""
        return None

    # -- retention ------------------------------------------------------------------------
    def record_rejected_fast(
        self,
        *,
        raw: str,
        reason: str,
        source: str = "http",
        remote: str | None = None,
        company: str | None = None,
    ) -> int:
        """``record_rejected`` without waiting for the disk (no fsync).

        For refusals anyone can cause (a wrong token, a stranger's network): keeping them is a
        courtesy to whoever inspects, and a flood of them must not cost one fsync each. A
        process crash loses none; a power cut may lose the last ones. The default is the
        durable ``record_rejected``: correct, only slower.
        """
        return self.record_rejected(
            raw=raw, reason=reason, source=source, remote=remote, company=company
        )

    def prune(self, older_than: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """Delete what is finished and older than ``older_than``; return counts per kind.

        Removed: events at or below every event consumer's cursor (see ``events_floor``;
        never one the dispatcher has not handled), agent stream messages, rejected requests,
        settled calls without a pending delivery, done and dead deliveries, originates, and
        wrap-ups and recording references whose call has no pending delivery.
        Kept whatever the age: pending deliveries, unsettled calls, and anything younger
        than ``older_than``. ``dry_run`` counts without deleting.

        Keys of the result: ``events``, ``agent_events``, ``rejected``, ``calls``,
        ``deliveries``, ``originates``, ``wrapups``, ``recordings``. Backends that cannot
        prune raise ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support pruning")
