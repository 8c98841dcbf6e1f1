"""The objects that flow between the core and plugins: calls, contacts, pops, records.

These are the public data contract of callbridge. Plugins receive them from hooks and return
``Contact`` and ``ActivityRef``; they never see VOIspeed field names (those stay in
``callbridge.voispeed``). All times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

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


class Call(BaseModel):
    """One user's leg of a call, as the tracker knows it at the moment of a hook call."""

    model_config = ConfigDict(frozen=True)

    #: ``<company>:<user call id>``: stable across restarts, the basis of idempotency keys.
    key: str
    company_id: str | None = None
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


class CallRecord(BaseModel):
    """A finished call, handed to ``log_call`` once per plugin."""

    model_config = ConfigDict(frozen=True)

    call: Call
    contacts: dict[str, Contact] = Field(default_factory=dict)
    #: Seconds from answer to end (0 for calls never answered).
    duration_s: int = 0
    #: Seconds from ring to answer or end.
    ring_s: int = 0
    recording_url: str | None = None

    def contact_for(self, connector: str) -> Contact | None:
        """The contact this connector found for the call, if any."""
        return self.contacts.get(connector)

    def idempotency_key(self, connector: str) -> str:
        """Stable key for "this call logged in this CRM": use it for upserts and dedup."""
        return f"callbridge:{self.call.key}:{connector}"


class ActivityRef(BaseModel):
    """Where a connector wrote the activity (returned by ``log_call``)."""

    model_config = ConfigDict(frozen=True)

    connector: str = ""
    record_type: str
    record_id: str
    url: str | None = None
