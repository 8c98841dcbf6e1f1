"""What a click-to-call request is and what it becomes: the API's bodies, its external id,
and the PBX command it sends (SOAP CallReq/CallReqExt, or SERI ``call_request``).

Kept apart from the routes (``calls``) so that every check that can refuse a request runs
before anything is written, in one place a reader finds from the name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException
from pydantic import BaseModel, Field

from ..models import Call, CrmContext
from ..voispeed import envelope
from ..voispeed.codes import CallableType
from ..voispeed.envelope import InvalidRequest, SoapRequest
from ..voispeed.ids import InvalidIdentifier, new_external_id, validate_external_id

if TYPE_CHECKING:
    from ..settings import PbxSettings
    from ..voispeed.client import PbxClient
    from .services import Services


class CallRequest(BaseModel):
    """A click-to-call request."""

    agent: str = Field(
        description="The agent: an extension (mapped with CALLBRIDGE_PBX__AGENTS) or a PBX "
        "user such as auth-mario@acme (calling-mario@acme is the same user).",
        examples=["201"],
    )
    number: str = Field(min_length=1, max_length=40, examples=["+39 06 1234 5678"])
    device_id: str | None = Field(
        default=None,
        description="The device to ring (8 hex characters; dec:N for a monitor table's "
        "decimal id). Default: CALLBRIDGE_PBX__AGENT_DEVICES, else the device the agent "
        "logged in last, else none (the PBX chooses).",
        examples=["000012A0"],
    )
    external_id: str | None = Field(
        default=None,
        description="Your own id for the call (1-40 of [A-Za-z0-9._-]).",
        max_length=40,
    )
    crm: CrmContext | None = Field(
        default=None, description="The CRM record the agent clicked from: the activity lands there."
    )
    record: bool = Field(default=False, description="Ask the PBX to record (uses CallReqExt).")
    calling_id: str | None = Field(
        default=None, description="CallReqExt: id of the calling entity (8 hex characters)."
    )
    calling_type: CallableType = CallableType.USER
    called_id: str | None = None
    called_type: CallableType = CallableType.GATEWAY


class ClickToCallState(BaseModel):
    """A click-to-call request and the call it became."""

    external_id: str
    state: str = Field(
        description="requested, sent, unconfirmed (the PBX may have placed it: check the "
        "phone, do not retry), failed (the PBX refused), unmatched (no call of the agent to "
        "the number followed within CALLBRIDGE_PBX__ORIGINATE_WINDOW), ringing, answered, ended"
    )
    agent: str
    extension: str | None
    number: str
    crm: CrmContext | None = None
    error: str | None = None
    created_at: datetime
    call: Call | None = None
    duration_s: int | None = Field(
        default=None, description="Seconds from answer to end, once the call ended."
    )


class TransferRequest(BaseModel):
    """Transfer to another user call (attended) or divert to an extension."""

    to_call_id: str | None = Field(
        default=None,
        description="A user call id (CallTransfer); an extension here is refused.",
        examples=["000012A1"],
    )
    to_extension: str | None = Field(default=None, examples=["202"])


class RecordRequest(BaseModel):
    """Start or stop recording."""

    on: bool = True


def soap_errors() -> tuple[type[Exception], type[Exception]]:
    from ..voispeed import PbxError, SoapOutcomeUnknown

    return PbxError, SoapOutcomeUnknown


def build_request(
    body: CallRequest, login: str, extension: str | None, device: str | None, external_id: str
) -> SoapRequest:
    """The CallReq (or CallReqExt) to send, or 422: checked before anything is written, so a
    corrected request may reuse the same external id."""
    try:
        if not (body.record or body.calling_id):
            return envelope.call_req(login, body.number, device, external_id)
        if not body.calling_id:
            raise HTTPException(422, "record=true needs calling_id (CallReqExt)")
        return envelope.call_req_ext(
            login,
            calling_id=body.calling_id,
            called_id=body.called_id or "00000000",
            calling_type=body.calling_type,
            called_type=body.called_type,
            calling_number=extension or "",
            called_number=body.number,
            device_id=device,
            external_id=external_id,
            record=body.record,
        )
    except InvalidRequest as exc:
        raise HTTPException(422, str(exc)) from None


def check_seri(body: CallRequest, extension: str | None) -> None:
    """What ``call_request`` cannot express is refused (422) before anything is written."""
    if extension is None:
        raise HTTPException(
            422,
            "the SERI dialect calls from an extension: list the agent in CALLBRIDGE_PBX__AGENTS",
        )
    if body.record or body.calling_id:
        raise HTTPException(422, "record and calling_id need the SOAP dialect (CallReqExt)")


def _idempotent_external_id(key: str, login: str) -> str:
    """The external id a request with this ``Idempotency-Key`` gets: the same for a repeat.

    Derived (not stored): a repeat finds the first request by its id, with no table of keys.
    Bound to the agent, so two agents' keys never meet.
    """
    if not key.strip() or len(key) > 200:
        raise HTTPException(422, "Idempotency-Key must have 1-200 characters")
    digest = hashlib.sha256(f"{login}\x00{key.strip()}".encode()).hexdigest()
    return f"idem-{digest[:26]}"


def choose_external_id(body: CallRequest, idempotency_key: str | None, login: str) -> str:
    """The request's external id: given, derived from its Idempotency-Key, or new; 422 if bad."""
    try:
        if body.external_id:
            return validate_external_id(body.external_id)
        if idempotency_key is not None:
            return _idempotent_external_id(idempotency_key, login)
        return new_external_id()
    except InvalidIdentifier as exc:
        raise HTTPException(422, str(exc)) from None


def sender(
    pbx: Any,
    body: CallRequest,
    param1: str,
    extension: str | None,
    device: str | None,
    external_id: str,
) -> tuple[str, Callable[[], str | None]]:
    """The command's name and a function that sends it (returning SERI's ``request_id``), or
    422 for what the PBX's dialect cannot express: checked before anything is written."""
    if getattr(pbx, "dialect", "soap") == "seri":
        check_seri(body, extension)
        assert extension is not None  # check_seri

        def send_seri() -> str | None:
            placed = pbx.call_request(
                extension, body.number, external_id=external_id, device=device
            )
            given: str | None = placed.request_id
            return given

        return "call_request", send_seri
    request = build_request(body, param1, extension, device, external_id)

    def send_soap() -> str | None:
        pbx.send(request)
        return None

    return request.command, send_soap


@dataclass(frozen=True)
class Tenant:
    """One company's side of the call API: its PBX settings and client, agents, devices.

    A token acts within its company only: its agents are looked up in its company's list,
    and its commands go out with its company's PBX credentials.
    """

    company: str
    pbx_settings: PbxSettings
    agents: dict[str, str]
    devices: dict[str, str]
    logins: dict[str, str]
    services: Services = field(repr=False)

    def client(self) -> PbxClient | None:
        """The company's PBX client (read when needed: tests may swap it)."""
        return self.services.pbx_for(self.company)


def tenants_of(services: Services) -> dict[str, Tenant]:
    """Each company's ``Tenant``, by company name."""
    tenants = {}
    for company in services.companies:
        settings = company.pbx_settings
        agents = settings.agent_map()
        tenants[company.name] = Tenant(
            company=company.name,
            pbx_settings=settings,
            agents=agents,
            devices=settings.device_map(),
            logins={login: ext for ext, login in agents.items()},
            services=services,
        )
    return tenants
