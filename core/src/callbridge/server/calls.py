"""Click-to-call and call control for CRM softphone pages, agent panels and scripts.

``POST /v1/calls`` stores the Originate in the journal *before* the SOAP command, so that the
events the PBX echoes with our external id always find who asked and from which CRM record.
The SOAP client's retry rule applies: a CallReq is re-sent only when it provably never reached
the PBX; when the outcome is unknown (read timeout, 5xx, a 200 that is not SOAP) we answer 202
``unconfirmed`` and let the events tell, rather than ring a second phone. Only a SOAP Fault or
a 4xx is "the PBX refused" (502, ``failed``).

Never ring a phone twice: a request with an ``Idempotency-Key`` header that was seen before
returns the call it made (200). Without one, a second click of the same agent on the same
number while the first request is still ``requested``/``sent``/``unconfirmed``/``ringing``
(within ``_REPEAT_WINDOW``) returns that request (200, same external id), no new CallReq.

Every journal read and write here runs in a worker thread (``_off_loop``): the routes share
their event loop with the PBX ingress, whose answer the PBX's own database write waits for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response

from .. import metrics
from ..companies.registry import agent_key
from ..engine.devices import learnt_device
from ..engine.tracker import duration_s
from ..models import Call, CallState, Originate
from ..numbers import same_number
from ..plugins.tenants import plain
from ..voispeed.envelope import InvalidRequest
from ..voispeed.ids import AmbiguousIdentifier, InvalidIdentifier, parse_user_id
from .auth import Grant, TokenAuth
from .calls_requests import (
    CallRequest,
    ClickToCallState,
    RecordRequest,
    Tenant,
    TransferRequest,
    choose_external_id,
    sender,
    soap_errors,
    tenants_of,
)
from .services import Services

log = logging.getLogger("callbridge.api")

#: How many recent calls ``GET /v1/calls/{id}`` looks through for the call a request became.
_CALL_SCAN = 500
#: States in which a second click on the same number returns the first request.
_REPEATABLE = frozenset({"requested", "sent", "unconfirmed", "ringing"})
#: A click older than this is never a repeat (a ``ringing`` whose end event was lost).
_REPEAT_WINDOW = timedelta(minutes=5)

_T = TypeVar("_T")


async def _off_loop(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Run blocking journal work in a worker thread (see the module's docstring)."""
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


def _id_or_422(name: str, value: str) -> str:
    """An id typed by a caller (see ``parse_user_id``), or 422 naming the field."""
    try:
        return parse_user_id(value)
    except InvalidIdentifier as exc:
        raise HTTPException(422, f"{name}: {exc}") from None


def build_router(services: Services, auth: TokenAuth) -> APIRouter:
    """The click-to-call routes, bound to ``services``."""
    journal = services.journal
    region = services.settings.default_region
    #: Each company's agents and client, by name; a reload puts a new dict in at once.
    current = {"tenants": tenants_of(services)}
    services.reloaded.append(lambda _companies: current.update(tenants=tenants_of(services)))

    def tenant(who: Grant) -> Tenant:
        found = current["tenants"].get(who.company)
        if found is None:  # the token's company was removed a moment ago
            raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"})
        return found

    router = APIRouter(prefix="/v1/calls", tags=["Click-to-call"])

    def grant(request: Request) -> Grant:
        return auth.require(request)

    def resolve_agent(agent: str, t: Tenant) -> tuple[str, str | None]:
        """(PBX login, extension) for an extension or a login (``auth-`` or ``calling-``)."""
        if agent.startswith(("auth-", "calling-")):
            login = "auth-" + agent.partition("-")[2]
            return login, t.logins.get(login)
        if agent in t.agents:
            return t.agents[agent], agent
        raise HTTPException(
            422,
            f"unknown agent {agent!r:.40}: give a PBX user (auth-...) or an extension "
            "listed in CALLBRIDGE_PBX__AGENTS",
        )

    def require_pbx(t: Tenant) -> Any:
        pbx = t.client()
        if pbx is None:
            wanted = (
                "CALLBRIDGE_PBX__SERI_TOKEN"
                if t.pbx_settings.dialect == "seri"
                else "CALLBRIDGE_PBX__USER and password"
            )
            raise HTTPException(503, f"no PBX configured ({wanted})")
        return pbx

    def require_soap(t: Tenant) -> Any:
        """The PBX client for a call control command, which only the SOAP dialect has."""
        pbx = require_pbx(t)
        if getattr(pbx, "dialect", "soap") != "soap":
            raise HTTPException(
                501, "call control (hangup, hold, transfer, record) needs the SOAP dialect"
            )
        return pbx

    def settle(external_id: str, **changes: Any) -> Originate | None:
        """Record the SOAP answer, unless the PBX's events moved the request on meanwhile.

        A PBX may ring the phone (17), and even end a short call (19/21), before it answers
        the CallReq; the dispatcher has then moved the Originate to ``ringing``/``ended``,
        and writing ``sent`` over that would move it back for good.
        """
        current = journal.get_originate(external_id)
        if current is None or current.state != "requested":
            return current
        return journal.update_originate(external_id, **changes)

    def call_of(originate: Originate) -> Call | None:
        """The call the request became: by its key, else the recent call with its user call id.

        The dispatcher records the user call id on the Originate but not (yet) the call's key
        (which needs the company id of the events), so the key alone finds nothing.
        """
        if originate.call_key:
            return journal.get_call(originate.call_key)
        if not originate.user_call_id:
            return None
        for call in journal.list_calls(limit=_CALL_SCAN):
            if call.company != originate.company:
                continue
            if call.user_call_id == originate.user_call_id and call.external_id in (
                None,
                originate.external_id,
            ):
                return call
        return None

    def state_of(originate: Originate) -> ClickToCallState:
        call = call_of(originate)
        ended = call is not None and call.state is CallState.ENDED
        return ClickToCallState(
            external_id=originate.external_id,
            state=originate.state,
            agent=originate.user,
            extension=originate.extension,
            number=originate.number,
            crm=originate.crm,
            error=originate.error,
            created_at=originate.created_at,
            call=call,
            duration_s=duration_s(call) if call is not None and ended else None,
        )

    def device_for(body: CallRequest, extension: str | None, t: Tenant) -> str | None:
        """The request's device, else the agent's configured one, else the one it logged in."""
        if body.device_id:
            return _id_or_422("device_id", body.device_id)
        if extension is None:
            return None
        return t.devices.get(extension) or learnt_device(journal, agent_key(t.company, extension))

    def repeat_of(login: str, number: str, now: datetime, company: str) -> Originate | None:
        """The agent's request for the same number still under way, if any (a second click)."""
        for originate in reversed(journal.recent_originates(now - _REPEAT_WINDOW)):
            if (
                originate.user == login
                and originate.company == company
                and originate.state in _REPEATABLE
                and same_number(originate.number, number, region)
            ):
                return originate
        return None

    @router.post(
        "",
        status_code=202,
        response_model=ClickToCallState,
        summary="Place a call",
        responses={
            200: {"model": ClickToCallState, "description": "A repeat: the request under way"}
        },
    )
    async def place_call(
        body: CallRequest,
        response: Response,
        who: Grant = Depends(grant),  # noqa: B008
        idempotency_key: str | None = Header(default=None),
    ) -> ClickToCallState:
        """Create the Originate, then send CallReq (or CallReqExt) with its external id.

        A repeat (same ``Idempotency-Key``; or, without one, a second click on the same number
        while the first is under way) answers 200 with the first request, sending nothing.
        """
        t = tenant(who)
        login, extension = resolve_agent(body.agent, t)
        if not who.allows(extension or login):
            raise HTTPException(403, "this token may not act for that agent")
        if extension is None and t.company != "default":
            # Only the company's own agents: a login of another company is not ours to use.
            raise HTTPException(422, f"unknown agent {body.agent!r:.40} in company {t.company}")
        external_id = choose_external_id(body, idempotency_key, login)
        existing = await _off_loop(journal.get_originate, external_id)
        if existing is None and idempotency_key is None and not body.external_id:
            existing = await _off_loop(repeat_of, login, body.number, datetime.now(UTC), t.company)
        if existing is not None:
            if idempotency_key is None and body.external_id:
                raise HTTPException(409, "a call with this external id already exists")
            if existing.user != login or existing.company != t.company:
                raise HTTPException(409, "this Idempotency-Key was used for another request")
            response.status_code = 200
            return await _off_loop(state_of, existing)
        device = await _off_loop(device_for, body, extension, t)
        pbx = require_pbx(t)
        command, send = sender(
            pbx, body, t.pbx_settings.param1(login), extension, device, external_id
        )
        originate = Originate(
            external_id=external_id,
            user=login,
            extension=extension,
            number=body.number,
            device_id=device,
            crm=plain(body.crm),
            created_at=datetime.now(UTC),
            record=body.record,
            company=t.company,
        )
        try:
            await _off_loop(journal.create_originate, originate)
        except Exception:
            # Two requests with the same external id raced past the check above.
            raced = await _off_loop(journal.get_originate, external_id)
            if raced is not None and idempotency_key is not None and raced.user == login:
                response.status_code = 200
                return await _off_loop(state_of, raced)
            if raced is not None:
                raise HTTPException(409, "a call with this external id already exists") from None
            raise
        return await send_originate(originate, command, send)

    async def send_originate(
        originate: Originate, command: str, send: Callable[[], str | None]
    ) -> ClickToCallState:
        """Send the command; the Originate says what came of it (sent, failed, unconfirmed)."""
        external_id = originate.external_id
        pbx_error, outcome_unknown = soap_errors()
        try:
            request_id = await anyio.to_thread.run_sync(send)
        except outcome_unknown as exc:
            metrics.SOAP_COMMANDS.labels(command, "unknown").inc()
            updated = await _off_loop(settle, external_id, state="unconfirmed", error=str(exc))
            return await _off_loop(state_of, updated or originate)
        except pbx_error as exc:
            metrics.SOAP_COMMANDS.labels(command, "error").inc()
            await _off_loop(settle, external_id, state="failed", error=str(exc))
            raise HTTPException(502, f"PBX refused the call: {exc}") from None
        metrics.SOAP_COMMANDS.labels(command, "ok").inc()
        sent: dict[str, Any] = {"request_id": request_id} if request_id else {}
        updated = await _off_loop(settle, external_id, state="sent", **sent)
        if request_id and updated is not None and updated.request_id != request_id:
            # The events moved it on before the answer came: keep the request id all the same.
            await _off_loop(journal.update_originate, external_id, request_id=request_id)
        return await _off_loop(state_of, updated or originate)

    @router.get("/{external_id}", response_model=ClickToCallState, summary="State of a placed call")
    async def get_call(external_id: str, who: Grant = Depends(grant)) -> ClickToCallState:  # noqa: B008
        """The state as the PBX events move it."""
        originate = await _off_loop(journal.get_originate, external_id)
        if originate is None or originate.company != who.company:
            raise HTTPException(404, "no such call")  # another company's: not even its existence
        if not who.allows(originate.extension or originate.user):
            raise HTTPException(404, "no such call")
        return await _off_loop(state_of, originate)

    def target(call_ref: str, who: Grant) -> tuple[str, str]:
        """(PBX login, user call id) for an external id or a user call id."""
        t = tenant(who)
        originate = journal.get_originate(call_ref)
        if originate is not None and originate.company == who.company:
            if not who.allows(originate.extension or originate.user):
                raise HTTPException(404, "no such call")
            if not originate.user_call_id:
                raise HTTPException(409, "the PBX has not reported this call yet")
            return t.pbx_settings.param1(originate.user), originate.user_call_id
        try:
            user_call_id = parse_user_id(call_ref)
        except AmbiguousIdentifier as exc:
            raise HTTPException(422, f"call: {exc}") from None
        except InvalidIdentifier:
            raise HTTPException(404, "no such call") from None
        for call in journal.list_calls(limit=500, open_only=True):
            if call.company != who.company:
                continue
            if call.user_call_id == user_call_id and call.extension and who.allows(call.extension):
                login = t.agents.get(call.extension)
                if login is None:
                    raise HTTPException(
                        422, f"extension {call.extension} is not in CALLBRIDGE_PBX__AGENTS"
                    )
                return t.pbx_settings.param1(login), user_call_id
        raise HTTPException(404, "no such call")

    async def command(name: str, fn: Any, *args: Any) -> dict[str, str]:
        try:
            await anyio.to_thread.run_sync(lambda: fn(*args))
        except InvalidRequest as exc:
            raise HTTPException(422, str(exc)) from None  # never sent: the caller's mistake
        except Exception as exc:
            pbx_error, _ = soap_errors()
            if isinstance(exc, pbx_error):
                metrics.SOAP_COMMANDS.labels(name, "error").inc()
                raise HTTPException(502, f"PBX refused {name}: {exc}") from None
            raise
        metrics.SOAP_COMMANDS.labels(name, "ok").inc()
        return {"result": "ok", "command": name}

    def add_simple(action: str, name: str, method: str) -> None:
        async def handler(call_ref: str, who: Grant = Depends(grant)) -> dict[str, str]:  # noqa: B008
            login, user_call_id = await _off_loop(target, call_ref, who)
            pbx = require_soap(tenant(who))
            return await command(name, getattr(pbx, method), login, user_call_id)

        handler.__doc__ = f"{name} on the call (external id of a placed call, or user call id)."
        router.add_api_route(
            f"/{{call_ref}}/{action}",
            handler,
            methods=["POST"],
            summary=f"{action.capitalize()} a call",
            name=action,
        )

    add_simple("hangup", "CallDisconnect", "call_disconnect")
    add_simple("hold", "CallHold", "call_hold")
    add_simple("retrieve", "CallRetrieve", "call_retrieve")

    @router.post("/{call_ref}/transfer", summary="Transfer or divert a call")
    async def transfer(
        call_ref: str,
        body: TransferRequest,
        who: Grant = Depends(grant),  # noqa: B008
    ) -> dict[str, str]:
        """To another user call (CallTransfer) or to an extension (CallDivert)."""
        login, user_call_id = await _off_loop(target, call_ref, who)
        pbx = require_soap(tenant(who))
        if body.to_call_id:
            to_text = body.to_call_id.strip()
            if to_text in tenant(who).agents:
                raise HTTPException(
                    422,
                    f"to_call_id: {to_text} is an extension, not a user call id; CallTransfer "
                    "joins two calls (give the user call id of the other call, e.g. "
                    f"000012A1), or send this call to extension {to_text} with to_extension "
                    "(CallDivert)",
                )
            try:
                to_id = parse_user_id(to_text)
            except AmbiguousIdentifier as exc:
                raise HTTPException(
                    422,
                    f"to_call_id: {exc}. If {to_text} is an extension, send the call there "
                    "with to_extension (CallDivert)",
                ) from None
            except InvalidIdentifier as exc:
                raise HTTPException(422, f"to_call_id: {exc}") from None
            return await command("CallTransfer", pbx.call_transfer, login, user_call_id, to_id)
        if body.to_extension:
            return await command(
                "CallDivert", pbx.call_divert, login, user_call_id, body.to_extension
            )
        raise HTTPException(422, "give to_call_id or to_extension")

    @router.post("/{call_ref}/record", summary="Start or stop recording")
    async def record(
        call_ref: str,
        body: RecordRequest,
        who: Grant = Depends(grant),  # noqa: B008
    ) -> dict[str, str]:
        """CallRecStart / CallRecStop. A started recording puts the call's default recording
        reference on its activity (``CALLBRIDGE_RECORDINGS__REFERENCE``, docs/wrap-up.md)."""
        login, user_call_id = await _off_loop(target, call_ref, who)
        pbx = require_soap(tenant(who))
        if body.on:
            done = await command("CallRecStart", pbx.call_rec_start, login, user_call_id)
            await _off_loop(recorded, call_ref, user_call_id)
            return done
        return await command("CallRecStop", pbx.call_rec_stop, login, user_call_id)

    def recorded(call_ref: str, user_call_id: str) -> None:
        """The call CallRecStart just recorded, marked so (see ``server/recordings.py``)."""
        from .recordings import mark_call  # that module builds on this one's helpers

        originate = journal.get_originate(call_ref)
        if originate is not None and originate.call_key:
            call = journal.get_call(originate.call_key)
        else:
            opened = journal.list_calls(limit=500, open_only=True)
            call = next((c for c in opened if c.user_call_id == user_call_id), None)
        if call is None:
            log.warning("CallRecStart on %s: no call known to put the recording on", call_ref)
            return
        mark_call(services, call)

    return router
