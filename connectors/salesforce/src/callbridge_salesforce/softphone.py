"""The Open CTI softphone page, served by the connector's routes.

Salesforce shows the page in its softphone panel (the Call Center's ``reqAdapterUrl``). The
page does the two things only the browser can do: ``sforce.opencti.screenPop`` when a call
rings (pops arrive from callbridge's agent stream), and turning Open CTI click-to-dial into
``POST /v1/calls`` with the clicked record as CRM context.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import TYPE_CHECKING

from fastapi.responses import HTMLResponse, Response

from .settings import SalesforceSettings
from .urls import opencti_script_url

if TYPE_CHECKING:
    from fastapi import APIRouter

PAGE_PATH = "/softphone"
SCRIPT_PATH = "/softphone.js"


def _static(name: str) -> str:
    return (files("callbridge_salesforce") / "static" / name).read_text(encoding="utf-8")


def opencti_url(settings: SalesforceSettings) -> str:
    """Where the page loads ``opencti_min.js`` from (configured, or derived from the org)."""
    if settings.opencti_url:
        return settings.opencti_url
    origin = settings.lightning_url or settings.instance_url
    if origin is None and settings.domain not in ("login", "test"):
        origin = f"https://{settings.domain}.salesforce.com"
    if origin is None:
        # Without the org's domain we cannot know its Visualforce host; the page says so.
        return ""
    if origin.endswith(".lightning.force.com"):
        origin = origin.replace(".lightning.force.com", ".my.salesforce.com")
    return opencti_script_url(origin, settings.api_version)


def page_config(settings: SalesforceSettings) -> dict[str, str]:
    """What the page's script needs to know (no secrets: the page is public)."""
    return {
        "connector": "salesforce",
        "openctiUrl": opencti_url(settings),
        "apiBase": settings.api_base_url.rstrip("/"),
    }


def render_page(settings: SalesforceSettings) -> str:
    """The page's HTML with its configuration embedded as JSON."""
    config = json.dumps(page_config(settings)).replace("<", "\\u003c")
    return _static("softphone.html").replace("{{CONFIG}}", config)


def add_routes(router: APIRouter, settings: SalesforceSettings) -> None:
    """Add ``/softphone`` and ``/softphone.js`` to ``router`` (mounted at /plugins/salesforce)."""
    html = render_page(settings)
    script = _static("softphone.js")

    @router.get(PAGE_PATH, response_class=HTMLResponse, include_in_schema=False)
    def softphone() -> HTMLResponse:
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    @router.get(SCRIPT_PATH, include_in_schema=False)
    def softphone_script() -> Response:
        return Response(
            script,
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache"},
        )
