"""The objects that flow between the core and plugins: calls, contacts, pops, records.

These are the public data contract of callbridge. Plugins receive them from hooks and return
``Contact`` and ``ActivityRef``; they never see VOIspeed field names (those stay in
``callbridge.voispeed``). All times are timezone-aware UTC.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .voispeed.events import Identity


class Direction(StrEnum):
    """Which way a call went, from the local user's side."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class CallState(StrEnum):
    """Where a call is now."""

    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


class Outcome(StrEnum):
    """How a call ended. ``unknown`` is honest: the end event was lost and the call expired."""

    ANSWERED = "answered"
    MISSED = "missed"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


class HungUpBy(StrEnum):
    """Who closed the call (ssn_event 21 = local, 20 = remote)."""

    LOCAL = "local"
    REMOTE = "remote"
    UNKNOWN = "unknown"


class CrmContext(BaseModel):
    """The CRM record an agent acted from (click-to-call): where the activity must land."""

    model_config = ConfigDict(frozen=True)

    connector: str
    record_type: str
    record_id: str


#: Longest wrap-up note kept (characters): a CRM's description field holds about this much.
MAX_WRAPUP_NOTES = 10_000


class WrapUp(BaseModel):
    """What the agent says about a call once it is over: notes, outcome, the record it is for.

    Each save is a new ``revision`` (1, 2, ...): the activity written at hang-up is amended
    once per revision (``update_call``), and an edit made on a stale form is refused instead
    of overwriting a newer one. ``record`` is the CRM record the agent chose (an ambiguous or
    empty lookup); ``related`` a deal, opportunity, case or ticket.
    """

    model_config = ConfigDict(frozen=True)

    call_key: str
    revision: int = Field(ge=1)
    notes: str = Field(default="", max_length=MAX_WRAPUP_NOTES)
    #: A value of the CRM's own list (HubSpot disposition, Salesforce CallDisposition).
    outcome: str | None = Field(default=None, max_length=200)
    record: CrmContext | None = None
    related: CrmContext | None = None
    #: The extension of the agent who saved it.
    extension: str | None = None
    saved_at: datetime

    def same_content(self, other: WrapUp) -> bool:
        """Whether ``other`` says the same (a repeated save, not a new revision)."""
        fields = ("notes", "outcome", "record", "related")
        return all(getattr(self, name) == getattr(other, name) for name in fields)

    def record_for(self, connector: str) -> CrmContext | None:
        """The chosen record when it is one of ``connector``'s."""
        return self.record if self.record and self.record.connector == connector else None

    def related_for(self, connector: str) -> CrmContext | None:
        """The related record when it is one of ``connector``'s."""
        return self.related if self.related and self.related.connector == connector else None


class Originate(BaseModel):
    """A click-to-call request, created before the SOAP command; the externalid is the thread."""

    model_config = ConfigDict(frozen=True)

    external_id: str
    #: The PBX user the call is placed for (``auth-name@domain``).
    user: str
    #: The agent's extension, when known.
    extension: str | None = None
    number: str
    device_id: str | None = None
    crm: CrmContext | None = None
    created_at: datetime
    #: requested | sent | failed | ringing | answered | ended
    state: str = "requested"
    error: str | None = None
    user_call_id: str | None = None
    #: The tracker's key of the call this request produced, once its events arrive.
    call_key: str | None = None
    #: The SERI dialect's ``request_id`` for the ``call_request`` (a ``cmd_failed`` names it).
    request_id: str | None = None
    #: Placed with ``call_request_to_be_rec`` 1: the PBX records the call.
    record: bool = False
    #: The company (tenant) whose API token placed the call (docs/companies.md).
    company: str = "default"


class Contact(BaseModel):
    """A CRM record that matches a caller, as a connector found it."""

    model_config = ConfigDict(frozen=True)

    #: Name of the plugin that found it (filled in by the core when left empty).
    connector: str = ""
    record_type: str = "Contact"
    record_id: str
    name: str
    company: str | None = None
    #: Link that opens the record in the CRM's UI.
    url: str | None = None
    #: CRM id of the record's owner, when the CRM has one.
    owner_id: str | None = None
    numbers: list[str] = Field(default_factory=list)
    #: Several records matched equally well: the agent must choose among these.
    candidates: list[Contact] = Field(default_factory=list)

    @property
    def ambiguous(self) -> bool:
        """True when the connector could not choose between several matching records."""
        return bool(self.candidates)


class ContactDraft(BaseModel):
    """A contact (or lead) the agent creates for an unknown number (``create_contact``)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=200)
    number: str = Field(min_length=1, max_length=40)
    company: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=200)
    #: ``contact`` or ``lead`` (a CRM without leads makes a contact either way).
    kind: str = Field(default="contact", pattern="^(contact|lead)$")
    #: The extension of the agent creating it (a CRM may make them its owner).
    extension: str | None = None


class Call(BaseModel):
    """One user's leg of a call, as the tracker knows it at the moment of a hook call."""

    model_config = ConfigDict(frozen=True)

    #: ``<company>:<user call id>``: stable across restarts, the basis of idempotency keys.
    key: str
    company_id: str | None = None
    #: The company's name (``default`` without a companies file): which company's plugins
    #: see this call, and whose API tokens may read it (docs/companies.md).
    company: str = "default"
    user_call_id: str
    direction: Direction
    state: CallState
    #: The local user: PBX user id, extension, and name from the PBX when known.
    user_id: str | None = None
    extension: str | None = None
    #: The remote party's number as the PBX gave it, and in E.164 when it could be parsed.
    remote_number: str = ""
    remote_e164: str | None = None
    #: Incoming calls: the number the caller dialled (16's ``ext``): the user's extension, a
    #: group's number or a DID. ``extension`` is the user's own (see docs/voispeed.md).
    dialled_number: str | None = None
    #: The identity the PBX attached (the caller on 16, the recipient on 17).
    identity: Identity | None = None
    group: str | None = None
    external_id: str | None = None
    originate: Originate | None = None
    ring_at: datetime | None = None
    answer_at: datetime | None = None
    end_at: datetime | None = None
    outcome: Outcome | None = None
    hung_up_by: HungUpBy | None = None
    #: The PBX reported the call recorded (the tables' ``recording`` flags): its activity
    #: gets the default recording reference (``CALLBRIDGE_RECORDINGS__REFERENCE``).
    recorded: bool = False

    @property
    def crm_context(self) -> CrmContext | None:
        """The record the agent clicked from, for click-to-call calls."""
        return self.originate.crm if self.originate else None


class ScreenPop(BaseModel):
    """What an agent's screen shows for a call: the call and one contact per connector."""

    model_config = ConfigDict(frozen=True)

    call: Call
    #: Connector name -> the contact it found (absent: not found or lookup timed out).
    contacts: dict[str, Contact] = Field(default_factory=dict)

    @property
    def state(self) -> CallState:
        """Shortcut for ``pop.call.state``."""
        return self.call.state


class LookupStatus(StrEnum):
    """Where a connector's contact lookup for a call stands when the call is logged.

    ``found`` and ``not_found`` are the CRM's own answers (``not_found``: it really has no
    match). ``unsettled`` means no answer was had: the search failed (rate limit, outage,
    expired session) or was still waiting for its turn (paced searches) when the call ended.
    The core does an unsettled lookup again just before ``log_call`` (within the delivery's
    retries), so a connector's ``log_call`` normally sees only the first two.
    ``no_number`` means there was nothing to search for.
    """

    FOUND = "found"
    NOT_FOUND = "not_found"
    UNSETTLED = "unsettled"
    NO_NUMBER = "no_number"


#: Lookup states that are an answer: no new search is needed before logging.
SETTLED_LOOKUPS = frozenset({LookupStatus.FOUND, LookupStatus.NOT_FOUND, LookupStatus.NO_NUMBER})


def _stamp(moment: datetime) -> str:
    """``20240501T093000.123Z``: a call's start, to the millisecond, in a key."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%dT%H%M%S.") + f"{moment.microsecond // 1000:03d}Z"


class CallRecord(BaseModel):
    """A finished call, handed to ``log_call`` once per plugin."""

    model_config = ConfigDict(frozen=True)

    call: Call
    contacts: dict[str, Contact] = Field(default_factory=dict)
    #: Seconds from answer to end (0 for calls never answered), rounded down; for display.
    #: Connectors that write a duration use ``duration_ms`` (and round only if the CRM
    #: takes whole seconds).
    duration_s: int = 0
    #: Seconds from ring to answer or end, rounded down.
    ring_s: int = 0
    #: Milliseconds from answer to end, as exact as the event times.
    duration_ms: int = 0
    #: Milliseconds from ring to answer or end.
    ring_ms: int = 0
    #: Connector name -> how its contact lookup stands (see ``LookupStatus``); a connector
    #: absent here does not look contacts up.
    lookups: dict[str, LookupStatus] = Field(default_factory=dict)
    #: Where the PBX recorded the call (see ``CALLBRIDGE_RECORDINGS__REFERENCE``), and the
    #: link made of it (``CALLBRIDGE_RECORDINGS__URL_TEMPLATE``); None: not recorded, or no
    #: link configured. A reference known only later arrives through ``update_call``.
    recording: str | None = None
    recording_url: str | None = None
    #: The agent's wrap-up as it stood when this record was handed to the connector (None:
    #: none yet; a later one arrives through ``update_call``).
    wrapup: WrapUp | None = None
    #: 2: ``idempotency_key`` carries the call's start. 1: a delivery enqueued by a version
    #: before that keeps the key it may already have used in a CRM (no second activity
    #: across the upgrade); connectors may also keep their older matching for it.
    key_format: int = 2

    @model_validator(mode="before")
    @classmethod
    def _fill_milliseconds(cls, data: Any) -> Any:
        """Records stored before ``duration_ms`` existed: the seconds are all there is."""
        if isinstance(data, dict):
            data = dict(data)
            for ms, s in (("duration_ms", "duration_s"), ("ring_ms", "ring_s")):
                if ms not in data and s in data:
                    data[ms] = int(data[s] or 0) * 1000
        return data

    def contact_for(self, connector: str) -> Contact | None:
        """The contact this connector found for the call, if any."""
        return self.contacts.get(connector)

    def lookup_for(self, connector: str) -> LookupStatus | None:
        """How this connector's lookup stands (None: it does not look contacts up)."""
        return self.lookups.get(connector)

    @property
    def started_at(self) -> datetime | None:
        """When the call began: its ring, else its answer, else its end."""
        call = self.call
        return call.ring_at or call.answer_at or call.end_at

    def idempotency_key(self, connector: str, *, alternate: bool = False) -> str:
        """Key for "this call logged in this CRM": use it for upserts and dedup.

        ``callbridge:<call key>@<start to the ms>:<connector>``. The PBX reuses user call
        ids, and the core's journal (which tells a reused id's calls apart) is pruned or may
        be lost; the start time keeps the key of a later call with the same id different for
        ever. ``alternate=True`` gives a second key for the rare case where a connector finds
        an activity under the first one that is not this call (see ``signature``).
        """
        start = self.started_at
        if self.key_format < 2:
            start = None
        base = self.call.key if start is None else f"{self.call.key}@{_stamp(start)}"
        if alternate:
            base += "~" + hashlib.sha256(self.signature.encode()).hexdigest()[:10]
        return f"callbridge:{base}:{connector}"

    @property
    def signature(self) -> str:
        """What makes this call this call: its start, direction and numbers, as one line.

        A connector that finds an activity already under the call's key compares the
        signature it stored there with this one before adopting it. The end and answer
        times are left out: a call finished again after a crash must still match itself.
        """
        call = self.call
        start = self.started_at
        remote = call.remote_e164 or call.remote_number or "-"
        local = call.extension or call.user_id or "-"
        when = _stamp(start) if start else "-"
        return f"{call.key} {call.direction.value} {remote} {local} {when}"


class ActivityRef(BaseModel):
    """Where a connector wrote the activity (returned by ``log_call``)."""

    model_config = ConfigDict(frozen=True)

    connector: str = ""
    record_type: str
    record_id: str
    url: str | None = None
