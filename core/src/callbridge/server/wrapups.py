"""``/v1/calls/{call}/wrap-up``: the agent's notes, outcome and chosen record for a call.

The wrap-up is journaled (durably, before the answer) and revisioned: each save is the next
revision, a save from a stale form is refused (409), and a repeated request returns what was
saved. The engine amends the CRM activities with it (``engine/wrapups.py``,
docs/wrap-up.md); this route only writes the journal, like every other route of the
service, in a worker thread so the PBX ingress sharing the loop never waits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from ..engine import wrapups
from ..journal.base import Journal, WrapUpConflictError
from ..models import MAX_WRAPUP_NOTES, Call, CrmContext, WrapUp
from ..plugins.tenants import base_name, plain
from .auth import Grant, TokenAuth
from .calls import _off_loop
from .services import Services


class WrapUpRequest(BaseModel):
    """What the agent's form sends."""

    notes: str = Field(default="", max_length=MAX_WRAPUP_NOTES)
    outcome: str | None = Field(
        default=None,
        max_length=200,
        description="A value of the CRM's own list (HubSpot disposition, Salesforce "
        "CallDisposition, the directory's list).",
    )
    record: CrmContext | None = Field(
        default=None,
        description="The record the call belongs to, when the lookup was ambiguous or empty.",
    )
    related: CrmContext | None = Field(
        default=None, description="A deal, opportunity, case or ticket the call is about."
    )
    revision: int | None = Field(
        default=None,
        ge=1,
        description="The revision this save makes: the one the form was loaded with plus 1. "
        "Omitted: the next one (last writer wins).",
    )


class WrapUpState(BaseModel):
    """A call's wrap-up as the journal holds it (``revision`` 0: none yet)."""

    call_key: str
    revision: int = 0
    wrapup: WrapUp | None = None
    #: For the form: the connectors whose records it can search, and each one's outcomes
    #: (a plugin's ``wrapup_outcomes``; none listed: any text).
    connectors: list[str] = Field(default_factory=list)
    outcomes: dict[str, list[str]] = Field(default_factory=dict)


def agent_call(journal: Journal, call_ref: str, who: Grant) -> Call:
    """The call by key, or by the external id of the click-to-call that placed it (404 when
    there is none, or it is another agent's: its existence is not the token's business)."""
    call = journal.get_call(call_ref)
    if call is None:
        originate = journal.get_originate(call_ref)
        if originate is not None and originate.call_key:
            call = journal.get_call(originate.call_key)
    if call is None or call.company != who.company:
        raise HTTPException(404, "no such call")  # another company's: not even its existence
    if not (who.everything or (call.extension and who.allows(call.extension))):
        raise HTTPException(404, "no such call")
    return call


def build_router(services: Services, auth: TokenAuth) -> APIRouter:
    """The wrap-up routes, bound to ``services``."""
    journal = services.journal
    plugins = services.plugins
    router = APIRouter(prefix="/v1/calls", tags=["Wrap-up"])

    def grant(request: Request) -> Grant:
        return auth.require(request)

    def call_for(call_ref: str, who: Grant) -> Call:
        return agent_call(journal, call_ref, who)

    def check_records(body: WrapUpRequest, who: Grant) -> None:
        if plugins is None:
            return
        # The company's instances, by instance name (``hubspot@acme``) or plugin name (what a
        # CRM page and the plugin itself call it: ``record_for(self.name)``).
        active = plugins.active(who.company)
        known = {info.name for info in active} | {base_name(info.name) for info in active}
        for name, ref in (("record", body.record), ("related", body.related)):
            if ref is not None and ref.connector not in known:
                raise HTTPException(422, f"{name}: no active connector {ref.connector!r:.60}")

    def store(call: Call, body: WrapUpRequest) -> tuple[WrapUp, bool]:
        current = journal.get_wrapup(call.key)
        revision = body.revision or (current.revision + 1 if current else 1)
        wrapup = WrapUp(
            call_key=call.key,
            revision=revision,
            notes=body.notes,
            outcome=body.outcome or None,
            record=plain(body.record),
            related=plain(body.related),
            extension=call.extension,
            saved_at=datetime.now(UTC),
        )
        updaters = plugins.implementers("update_call", call.company) if plugins else []
        kept = wrapups.save(journal, wrapup, updaters, datetime.now(UTC))
        return kept, kept.saved_at == wrapup.saved_at

    @router.post(
        "/{call_ref}/wrap-up",
        response_model=WrapUpState,
        status_code=201,
        summary="Save the agent's wrap-up of a call",
        responses={
            200: {"description": "A repeat of the saved revision: nothing changed"},
            404: {"description": "No such call, or another agent's"},
            409: {"description": "The revision is not the next one (a stale form)"},
        },
    )
    async def save_wrapup(
        call_ref: str,
        body: WrapUpRequest,
        response: Response,
        who: Grant = Depends(grant),  # noqa: B008
    ) -> WrapUpState:
        """Notes, outcome, chosen and related record of a call (key, or click-to-call id).

        Allowed from ringing on; the activity is written with it, or amended once per
        revision when it was written already (docs/wrap-up.md).
        """
        check_records(body, who)
        call = await _off_loop(call_for, call_ref, who)
        try:
            kept, new = await _off_loop(store, call, body)
        except WrapUpConflictError as exc:
            raise HTTPException(409, str(exc)) from None
        if not new:
            response.status_code = 200
        return WrapUpState(call_key=call.key, revision=kept.revision, wrapup=kept)

    def choices(company: str) -> tuple[list[str], dict[str, list[str]]]:
        if plugins is None:
            return [], {}
        outcomes: dict[str, list[str]] = {}
        for info in plugins.active(company):
            listed = getattr(info.plugin, "wrapup_outcomes", None)
            if isinstance(listed, list | tuple) and all(isinstance(o, str) for o in listed):
                outcomes[info.name] = list(listed)
        return plugins.implementers("search_contacts", company), outcomes

    @router.get("/{call_ref}/wrap-up", response_model=WrapUpState, summary="A call's wrap-up")
    async def get_wrapup(call_ref: str, who: Grant = Depends(grant)) -> WrapUpState:  # noqa: B008
        """The latest revision (``revision`` 0 when none was saved), and what the form
        offers: the connectors it can search and their outcomes."""
        call = await _off_loop(call_for, call_ref, who)
        kept: Any = await _off_loop(journal.get_wrapup, call.key)
        connectors, outcomes = choices(call.company)
        return WrapUpState(
            call_key=call.key,
            revision=kept.revision if kept else 0,
            wrapup=kept,
            connectors=connectors,
            outcomes=outcomes,
        )

    return router
