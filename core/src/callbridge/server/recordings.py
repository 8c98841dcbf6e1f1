"""``/v1/calls/{call}/recording``: where the PBX recorded a call, for its activity's link.

The vendor's document says when a call is recorded (CallRecStart, the ``recording`` flags of
``monitor_calls`` and ``monitor_user_calls``) but not where the file goes. An operator's
script that finds the file (a recordings directory, the PBX's archive) tells callbridge here;
CallRecStart through ``POST /v1/calls/{call}/record`` marks the call with the default
reference (``CALLBRIDGE_RECORDINGS__REFERENCE``) by itself. Either way the engine writes the
link on activities not written yet and amends, once per reference, those that were
(``engine/recordings.py``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator

from ..engine import recordings
from ..models import Call
from .auth import Grant, TokenAuth
from .calls import _off_loop
from .services import Services
from .wrapups import agent_call

#: Longest reference kept: a path or a URL.
MAX_REFERENCE = 1000


class RecordingRequest(BaseModel):
    """The reference of a call's recording: a file name, a path, or a whole URL."""

    reference: str = Field(
        min_length=1, max_length=MAX_REFERENCE, examples=["2024/05/0000002A.wav"]
    )

    @field_validator("reference")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isprintable() or value != value.strip():
            raise ValueError("must be printable, without surrounding spaces")
        return value


class RecordingState(BaseModel):
    """A call's recording as callbridge holds it (``reference`` None: none known)."""

    call_key: str
    reference: str | None = None
    #: The link activities carry (``CALLBRIDGE_RECORDINGS__URL_TEMPLATE``); None: none made.
    url: str | None = None
    #: Whether this request changed the reference (False: a repeat, nothing enqueued anew).
    changed: bool = False


def mark_call(services: Services, call: Call, reference: str | None = None) -> bool:
    """Mark ``call`` recorded (``reference`` None: the default one) and enqueue amendments."""
    settings = services.settings.recordings
    plugins = services.plugins
    updaters = plugins.implementers("update_call", call.company) if plugins is not None else []
    chosen = reference or recordings.default_reference(settings, call)
    return recordings.mark(services.journal, call.key, chosen, updaters)


def build_router(services: Services, auth: TokenAuth) -> APIRouter:
    """The recording routes, bound to ``services``."""
    journal = services.journal
    settings = services.settings.recordings
    router = APIRouter(prefix="/v1/calls", tags=["Recordings"])

    def grant(request: Request) -> Grant:
        return auth.require(request)

    def call_for(call_ref: str, who: Grant) -> Call:
        return agent_call(journal, call_ref, who)

    def state(call: Call, changed: bool = False) -> RecordingState:
        reference = journal.get_recording(call.key)
        url = recordings.recording_url(settings, call, reference) if reference else None
        return RecordingState(call_key=call.key, reference=reference, url=url, changed=changed)

    @router.put(
        "/{call_ref}/recording",
        response_model=RecordingState,
        summary="Say where a call was recorded",
        responses={404: {"description": "No such call, or another agent's"}},
    )
    async def put_recording(
        call_ref: str,
        body: RecordingRequest,
        who: Grant = Depends(grant),  # noqa: B008
    ) -> RecordingState:
        """The recording's reference (or URL); activities written already are amended once
        per new reference, a repeat changes nothing (``changed`` false)."""
        call = await _off_loop(call_for, call_ref, who)
        changed = await _off_loop(mark_call, services, call, body.reference)
        return await _off_loop(state, call, changed)

    @router.get(
        "/{call_ref}/recording", response_model=RecordingState, summary="A call's recording"
    )
    async def get_recording(call_ref: str, who: Grant = Depends(grant)) -> RecordingState:  # noqa: B008
        """The reference and link callbridge holds for the call."""
        call = await _off_loop(call_for, call_ref, who)
        return await _off_loop(state, call)

    return router
