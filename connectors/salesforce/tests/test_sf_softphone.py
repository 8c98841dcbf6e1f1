"""The Open CTI softphone page in headless Chromium with a stand-in ``sforce.opencti``.

The page is served by the plugin's own routes from a small FastAPI app that also plays the
parts of callbridge's HTTP service the page talks to: the agent stream (SSE) and
``POST /v1/calls``. The org's ``opencti_min.js`` is answered by the test with a stand-in that
records every Open CTI call.
"""

from __future__ import annotations

import asyncio
import json
import queue
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from callbridge.testing import ServerThread, bind_socket, require, wait_until
from callbridge_salesforce.plugin import SalesforcePlugin
from callbridge_salesforce.settings import SalesforceSettings

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
OPENCTI_URL = "https://acme--c.vf.force.com/support/api/62.0/lightning/opencti_min.js"
TOKEN = "agent-token-201"

STAND_IN = """
window.__cti = { calls: [], listener: null };
window.sforce = { opencti: {
  SCREENPOP_TYPE: { SOBJECT: "sobject", URL: "url", OBJECTHOME: "objecthome" },
  screenPop: function (a) {
    __cti.calls.push({ m: "screenPop", type: a.type, params: a.params });
    if (a.callback) { a.callback({ success: true }); }
  },
  enableClickToDial: function (a) {
    __cti.calls.push({ m: "enableClickToDial" });
    if (a && a.callback) { a.callback({ success: true }); }
  },
  onClickToDial: function (a) {
    __cti.listener = a.listener;
    __cti.calls.push({ m: "onClickToDial" });
  },
  setSoftphonePanelVisibility: function (a) {
    __cti.calls.push({ m: "setSoftphonePanelVisibility", visible: a.visible });
  }
} };
"""

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@dataclass
class FakeService:
    """The parts of callbridge's HTTP service the page uses, recording what it receives."""

    events: queue.Queue[str] = field(default_factory=queue.Queue)
    streams: list[dict[str, str]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    #: ``POST /v1/calls/{key}/wrap-up`` bodies received, with the call key.
    wrapups: list[dict[str, Any]] = field(default_factory=list)
    #: What ``POST /v1/calls`` answers: (status, body).
    answer: tuple[int, dict[str, Any]] = (202, {"external_id": "cb-1", "state": "sent"})

    def push_pop(self, data: dict[str, Any], event_id: int = 1) -> None:
        payload = {"id": event_id, "kind": "pop", **data}
        self.events.put(f"id: {event_id}\nevent: pop\ndata: {json.dumps(payload)}\n\n")


def _app(plugin: SalesforcePlugin, service: FakeService) -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/plugins/salesforce")
    plugin.register_routes(router)
    app.include_router(router)

    @app.get("/v1/agents/{extension}/events")
    async def events(extension: str, request: Request) -> StreamingResponse:
        service.streams.append(
            {"extension": extension, "authorization": request.headers.get("authorization", "")}
        )

        async def body() -> AsyncIterator[bytes]:
            yield b": connected\n\n"
            while not await request.is_disconnected():
                try:
                    yield service.events.get_nowait().encode()
                except queue.Empty:
                    await asyncio.sleep(0.05)

        return StreamingResponse(body(), media_type="text/event-stream")

    @app.post("/v1/calls/{key}/wrap-up")
    async def wrap_up(key: str, request: Request) -> JSONResponse:
        body = await request.json()
        service.wrapups.append(
            {"key": key, "authorization": request.headers.get("authorization", ""), **body}
        )
        return JSONResponse({"call_key": key, "revision": body["revision"]}, status_code=201)

    @app.post("/v1/calls")
    async def calls(request: Request) -> JSONResponse:
        service.calls.append(
            {
                "authorization": request.headers.get("authorization", ""),
                "body": await request.json(),
            }
        )
        status, body = service.answer
        return JSONResponse(body, status_code=status)

    return app


def page_plugin() -> SalesforcePlugin:
    """A plugin configured just enough to serve its softphone page."""
    plugin = SalesforcePlugin()
    plugin.configure(
        SalesforceSettings(
            _env_file=None,  # type: ignore[call-arg]
            session_id="unused",
            instance_url="https://acme.my.salesforce.com",
        )
    )
    return plugin


@pytest.fixture
def service() -> Iterator[FakeService]:
    plugin = page_plugin()
    fake = FakeService()
    sock = bind_socket("127.0.0.1", 0)  # the URL goes into the app before it serves
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with ServerThread(_app(plugin, fake)).start(sock=sock):
        yield fake


@pytest.fixture
def page(service: FakeService) -> Iterator[Any]:
    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            requested: list[str] = []

            def opencti(route: Any) -> None:
                requested.append(route.request.url)
                route.fulfill(status=200, content_type="text/javascript", body=STAND_IN)

            context.route(OPENCTI_URL, opencti)
            page = context.new_page()
            page.goto(f"{service.url}/plugins/salesforce/softphone#extension=201&token={TOKEN}")
            page.wait_for_function(
                "() => window.__cti && window.__cti.listener !== null", timeout=30_000
            )
            assert requested == [OPENCTI_URL]
            yield page
        finally:
            browser.close()


def _pop(state: str, contact: dict[str, Any] | None, key: str = "1:000012A0") -> dict[str, Any]:
    return {
        "call": {"key": key, "state": state, "remote_e164": "+390612345678"},
        "contacts": {"salesforce": contact} if contact else {},
    }


CONTACT = {
    "connector": "salesforce",
    "record_type": "Contact",
    "record_id": "003000000000001AAA",
    "name": "Mario Rossi",
    "company": "Acme",
    "candidates": [],
}


def test_ringing_pop_calls_screenpop_with_the_record(service: FakeService, page: Any) -> None:
    wait_until(lambda: bool(service.streams), "the page to open the agent stream")
    assert service.streams[0] == {"extension": "201", "authorization": f"Bearer {TOKEN}"}
    assert "enableClickToDial" in page.evaluate("() => __cti.calls.map(c => c.m)")
    service.push_pop(_pop("ringing", CONTACT), 1)
    page.wait_for_function("() => __cti.calls.some(c => c.m === 'screenPop')", timeout=30_000)
    pops = page.evaluate("() => __cti.calls.filter(c => c.m === 'screenPop')")
    assert pops == [
        {"m": "screenPop", "type": "sobject", "params": {"recordId": CONTACT["record_id"]}}
    ]
    # The same call answered does not pop again; the panel shows who it is.
    service.push_pop(_pop("answered", CONTACT), 2)
    page.wait_for_function(
        "() => document.getElementById('call-state').textContent === 'answered'", timeout=30_000
    )
    assert page.evaluate("() => __cti.calls.filter(c => c.m === 'screenPop').length") == 1
    assert page.text_content("#call-name") == "Mario Rossi"


def test_ambiguous_pop_lets_the_agent_choose(service: FakeService, page: Any) -> None:
    wait_until(lambda: bool(service.streams), "the page to open the agent stream")
    other = {**CONTACT, "record_id": "003000000000002AAA", "name": "Maria Rossi"}
    ambiguous = {**CONTACT, "candidates": [CONTACT, other]}
    service.push_pop(_pop("ringing", ambiguous), 1)
    page.wait_for_selector("#candidates button >> nth=1", timeout=30_000)
    assert page.evaluate("() => __cti.calls.filter(c => c.m === 'screenPop').length") == 0
    page.click("#candidates button >> nth=1")
    page.wait_for_function("() => __cti.calls.some(c => c.m === 'screenPop')", timeout=30_000)
    pops = page.evaluate("() => __cti.calls.filter(c => c.m === 'screenPop')")
    assert pops[0]["params"] == {"recordId": "003000000000002AAA"}


def test_click_to_dial_posts_the_call_with_the_record(service: FakeService, page: Any) -> None:
    page.evaluate(
        """() => __cti.listener({number: '+39 06 1234 5678', recordId: '003000000000001AAA',
                                 recordName: 'Mario Rossi', objectType: 'Contact'})"""
    )
    wait_until(lambda: bool(service.calls), "the click-to-dial POST")
    assert service.calls == [
        {
            "authorization": f"Bearer {TOKEN}",
            "body": {
                "agent": "201",
                "number": "+39 06 1234 5678",
                "crm": {
                    "connector": "salesforce",
                    "record_type": "Contact",
                    "record_id": "003000000000001AAA",
                },
            },
        }
    ]
    page.wait_for_function(
        "() => __cti.calls.some(c => c.m === 'setSoftphonePanelVisibility')", timeout=30_000
    )


def test_unconfirmed_call_says_check_your_phone(service: FakeService, page: Any) -> None:
    """The PBX's answer was unreadable: the phone may ring; the page must not invite a retry."""
    service.answer = (202, {"external_id": "cb-2", "state": "unconfirmed", "number": "x"})
    page.evaluate("() => __cti.listener({number: '+39 06 1234 5678', recordId: '003A'})")
    page.wait_for_function(
        "() => document.body.textContent.includes('unconfirmed: check your phone')",
        timeout=30_000,
    )
    assert "failed" not in page.text_content("body").lower()
    # A second click answered with the request under way (200): the page says so.
    service.answer = (200, {"external_id": "cb-2", "state": "ringing"})
    page.evaluate("() => __cti.listener({number: '+39 06 1234 5678', recordId: '003A'})")
    page.wait_for_function(
        "() => document.body.textContent.includes('Already calling')", timeout=30_000
    )
    assert len(service.calls) == 2


def test_the_agent_wraps_up_an_ambiguous_call_from_the_keyboard(
    service: FakeService, page: Any
) -> None:
    wait_until(lambda: bool(service.streams), "the page to open the agent stream")
    other = {**CONTACT, "record_id": "003000000000002AAA", "name": "Ada Rossi"}
    service.push_pop(_pop("ringing", {**CONTACT, "candidates": [CONTACT, other]}), 1)
    page.wait_for_selector("#wrapup:not([hidden])", timeout=30_000)
    page.locator("#wrapup-notes").focus()
    page.keyboard.type("Ada, not Mario")
    page.keyboard.press("Tab")
    page.keyboard.type("Interested")
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # (as logged) -> Mario Rossi
    page.keyboard.press("ArrowDown")  # -> Ada Rossi
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "() => document.getElementById('wrapup-result').textContent === 'Saved (revision 1)'"
    )
    (saved,) = service.wrapups
    assert saved["key"] == "1:000012A0" and saved["authorization"] == f"Bearer {TOKEN}"
    assert (saved["notes"], saved["outcome"], saved["revision"]) == (
        "Ada, not Mario",
        "Interested",
        1,
    )
    assert saved["record"] == {
        "connector": "salesforce",
        "record_type": "Contact",
        "record_id": "003000000000002AAA",
    }
    # A later pop of the same call keeps the form; a second save is revision 2.
    service.push_pop(_pop("ended", {**CONTACT, "candidates": [CONTACT, other]}), 2)
    page.locator("#wrapup-notes").focus()
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "() => document.getElementById('wrapup-result').textContent === 'Saved (revision 2)'"
    )
    assert [w["revision"] for w in service.wrapups] == [1, 2]
    assert service.wrapups[1]["notes"] == "Ada, not Mario"
