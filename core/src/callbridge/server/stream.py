"""``/v1/agents/{extension}/events``: the agent's live stream, as Server-Sent Events.

Each message has the journal id of its agent event, so a browser that reconnects with
``Last-Event-ID`` gets what it missed replayed from the journal before the live feed resumes.
Live messages are announced by a doorbell and read from the journal in id order. The
doorbell is the journal's own when it has one (Redis pub/sub: the engine that wrote the
message may run in any process, see docs/scaling.md), else the engine's bus (published by
the dispatcher's threads); either way it is handed to this event loop thread-safely and
carries no data. A comment line every ``heartbeat`` seconds keeps proxies from closing an
idle stream, and the journal is read then too, in case a bell was lost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from ..companies.registry import agent_key
from ..engine.bus import RECHECK, AgentBus
from ..journal.base import AgentEvent
from .auth import TokenAuth
from .services import Services

#: Largest event id a journal can hold (a signed 64-bit integer).
_MAX_ID = 2**63 - 1
#: Messages read from the journal at a time.
_PAGE = 500

_EXAMPLE = 'id: 7\nevent: pop\ndata: {"id":7,"kind":"pop","call":{},"contacts":{}}\n\n'


def format_sse(event: AgentEvent) -> bytes:
    """One SSE message: id, event kind, JSON data."""
    payload = {"id": event.id, "kind": event.kind, "at": event.at.isoformat(), **event.data}
    data = json.dumps(payload, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n".encode()


def build_router(services: Services, auth: TokenAuth) -> APIRouter:
    """The agent stream route, bound to ``services``."""
    journal = services.journal
    heartbeat = services.settings.server.heartbeat
    router = APIRouter(tags=["Agent stream"])

    @router.get(
        "/v1/agents/{extension}/events",
        summary="Live pops and call states for one agent (Server-Sent Events)",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {"example": _EXAMPLE}}}},
    )
    async def agent_events(request: Request, extension: str) -> StreamingResponse:
        """Bearer token (or ``access_token`` query parameter for EventSource) bound to the
        extension. Send ``Last-Event-ID`` (or ``last_event_id``) to replay missed messages."""
        grant = auth.require(request, allow_query=True)
        if not grant.allows(extension):
            raise HTTPException(403, "this token may not read that agent's events")
        raw_last = request.headers.get("last-event-id") or request.query_params.get(
            "last_event_id", "0"
        )
        try:
            last_id = max(0, int(raw_last))
        except ValueError:
            raise HTTPException(400, "Last-Event-ID must be an integer") from None
        if last_id > _MAX_ID:  # would fail in the journal query, after the 200 went out
            raise HTTPException(400, "Last-Event-ID is out of range")

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[AgentEvent] = asyncio.Queue(maxsize=10_000)

        bus: AgentBus | None = services.agent_bus()
        key = agent_key(grant.company, extension)  # never another company's agent
        detach = bus.subscribe_queue(key, loop, queue) if bus else (lambda: None)

        async def replay() -> AsyncIterator[bytes]:
            """Everything after ``last_id`` from the journal, in id order."""
            nonlocal last_id
            while True:
                missed = await anyio.to_thread.run_sync(
                    journal.agent_events_after, key, last_id, _PAGE
                )
                for event in missed:
                    last_id = event.id
                    yield format_sse(event)
                if len(missed) < _PAGE:
                    return

        async def body() -> AsyncIterator[bytes]:
            try:
                yield b": connected\n\n"
                # Subscribed first, so nothing falls between the replay and the live feed.
                async for message in replay():
                    yield message
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout=heartbeat)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        # A doorbell can be missed (another process's, while Redis was
                        # away): the journal is read at each heartbeat anyway.
                        async for message in replay():
                            yield message
                        yield b": heartbeat\n\n"
                        continue
                    if event.id <= last_id and event.kind != RECHECK:
                        continue  # already sent
                    # The bus is only the doorbell: lanes publish concurrently, so messages
                    # can arrive in another order than their ids. The journal gives them in
                    # order (an id is readable only once every smaller one is), none skipped.
                    while not queue.empty():
                        queue.get_nowait()
                    async for message in replay():
                        yield message
            finally:
                detach()

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return router
