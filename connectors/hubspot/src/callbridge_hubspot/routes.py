"""The connector's HTTP endpoints: the calling-extension page HubSpot loads in its iframe.

Mounted by the core under ``/plugins/hubspot/``. The page and its script are static; the SDK
is served from ``static/vendor/`` when it has been built (``sdk.ensure_sdk``). The page talks
to the core's own API on the same origin (``/v1/...``), so no CORS is involved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .sdk import SDK_FILE, STATIC_DIR

if TYPE_CHECKING:
    from fastapi import APIRouter

#: The files the page needs, by URL name (nothing else under static/ is served).
FILES: dict[str, tuple[str, str]] = {
    "calling.js": ("calling.js", "text/javascript; charset=utf-8"),
    "calling.css": ("calling.css", "text/css; charset=utf-8"),
    "calling-extensions-sdk.esm.js": (
        "vendor/calling-extensions-sdk.esm.js",
        "text/javascript; charset=utf-8",
    ),
}


def add_routes(router: APIRouter) -> None:
    """Add ``GET calling`` (the page) and ``GET static/{name}`` to ``router``."""
    from fastapi import HTTPException
    from fastapi.responses import FileResponse, HTMLResponse

    @router.get("/calling", response_class=HTMLResponse, summary="HubSpot calling extension")
    def calling_page() -> HTMLResponse:
        """The page HubSpot shows in its calling window (register its URL with
        ``callbridge hubspot calling-settings``)."""
        html = (STATIC_DIR / "calling.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    @router.get("/static/{name}", summary="Script and style of the calling page")
    def static_file(name: str) -> FileResponse:
        """One of the page's files; the SDK answers 503 until it has been built."""
        entry = FILES.get(name)
        if entry is None:
            raise HTTPException(status_code=404, detail="no such file")
        path = STATIC_DIR / entry[0]
        if not path.is_file():
            if path == SDK_FILE:
                raise HTTPException(
                    status_code=503,
                    detail="the HubSpot SDK is not built: run make -C connectors/hubspot sdk",
                )
            raise HTTPException(status_code=404, detail="no such file")
        return FileResponse(path, media_type=entry[1], headers={"Cache-Control": "no-cache"})
