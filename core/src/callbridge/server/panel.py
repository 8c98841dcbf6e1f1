"""The agent panel: a plain web page at ``/agent`` served from package files.

No build step and no dependency: one HTML file, two small scripts (the panel, and
``alerts.js``: a Web Audio ring tone and a desktop notification when a call rings while the
tab is in the background), one stylesheet (a dark scheme when the system asks for one). The
page subscribes to the agent's SSE stream, shows the ringing call (caller's name large, the
company, a button per CRM record), the last calls with their outcome, and drives the
call-control API. It reconnects by itself (EventSource resumes with Last-Event-ID; after a refused
connection the script retries with backoff and ``last_event_id``).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from .services import Services

_STATIC = files("callbridge.server") / "static"
_TYPES = {"agent.js": "text/javascript", "alerts.js": "text/javascript", "agent.css": "text/css"}


def build_router(services: Services) -> APIRouter:
    """``/agent`` and its assets."""
    router = APIRouter(tags=["Agent panel"], include_in_schema=False)

    @router.get("/agent", response_class=HTMLResponse)
    async def agent_page() -> HTMLResponse:
        return HTMLResponse(
            (_STATIC / "agent.html").read_text(encoding="utf-8"),
            headers={"Cache-Control": "no-store", "X-Frame-Options": "SAMEORIGIN"},
        )

    @router.get("/agent/{asset}")
    async def agent_asset(asset: str) -> Response:
        if asset not in _TYPES:
            raise HTTPException(404)
        return Response((_STATIC / asset).read_bytes(), media_type=_TYPES[asset])

    return router
