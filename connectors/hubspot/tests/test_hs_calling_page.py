"""The calling-extension page in headless Chromium, inside a stand-in for HubSpot's window.

HubSpot loads the page in an iframe and talks to it through HubSpot's calling-extensions SDK
(postMessage). The host page below plays HubSpot's part with the SDK's own message shapes
(``SYNC`` with ``hostUrl``/``portalId``, then ``DIAL_NUMBER`` with ``phoneNumber``/``objectId``),
and records what the SDK sends back. A stand-in of the core API serves the agent's event
stream and records ``POST /v1/calls``.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from callbridge.testing import ServerThread, require, wait_until
from callbridge_hubspot.plugin import HubSpotPlugin

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]  # fmt: skip
API_TOKEN = "api-token-201"

HOST_PAGE = """<!doctype html><html><body><h1>HubSpot stand-in</h1><script>
localStorage.setItem("callbridge.hubspot.extension", "201");
localStorage.setItem("callbridge.hubspot.token", "%(token)s");
window.messages = [];
const frame = document.createElement("iframe");
frame.src = "/plugins/hubspot/calling";
frame.width = 400; frame.height = 600;
let acked = false;
window.addEventListener("message", (event) => {
  if (event.source !== frame.contentWindow) return;
  window.messages.push(event.data);
  if (event.data && event.data.type === "SYNC_ACK") acked = true;
});
function sync() {
  if (acked) return;
  frame.contentWindow.postMessage({type: "SYNC", hostUrl: location.origin, portalId: 7654321,
    userId: 11, ownerId: 22, usesCallingWindow: false, messageId: "host_sync"}, "*");
  setTimeout(sync, 100);
}
frame.addEventListener("load", sync);
document.body.append(frame);
window.dial = (number, objectId) => frame.contentWindow.postMessage({type: "DIAL_NUMBER",
  messageId: "host_dial_" + Date.now(), data: {phoneNumber: number, objectId: objectId,
  objectType: "CONTACT", portalId: 7654321, ownerId: 22, subjectId: objectId,
  calleeInfo: {calleeId: objectId, calleeObjectTypeId: "0-1"}}}, "*");
</script></body></html>"""


def _require(reason: str) -> None:
    if os.environ.get("CALLBRIDGE_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def sdk_built() -> None:
    from callbridge_hubspot.sdk import SdkUnavailable, ensure_sdk

    try:
        ensure_sdk()
    except SdkUnavailable as exc:
        _require(f"HubSpot calling-extensions SDK unavailable: {exc}")


class StandIn:
    """The core API as far as the page uses it."""

    def __init__(self) -> None:
        self.pops: queue.Queue[dict[str, Any]] = queue.Queue()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        #: ``POST /v1/calls/{key}/wrap-up``: (call key, authorization, body).
        self.wrapups: list[tuple[str, str, dict[str, Any]]] = []
        self.stream_auth: list[str] = []
        self.stop = threading.Event()
        self.url = ""
        #: The stand-in's app, for tests that add the routes they need.
        self.app: FastAPI | None = None
        #: What ``POST /v1/calls`` answers: (status, body).
        self.answer: tuple[int, dict[str, Any]] = (
            202,
            {"external_id": "cbx-0001", "state": "requested"},
        )


@pytest.fixture
def service(sdk_built: None) -> Iterator[StandIn]:

    stand_in = StandIn()
    app = stand_in.app = FastAPI()
    router = APIRouter(prefix="/plugins/hubspot")
    HubSpotPlugin().register_routes(router)
    app.include_router(router)

    @app.get("/host")
    def host() -> HTMLResponse:
        return HTMLResponse(HOST_PAGE % {"token": API_TOKEN})

    @app.post("/v1/calls/{key}/wrap-up")
    async def wrap_up(key: str, request: Request) -> JSONResponse:
        body = await request.json()
        stand_in.wrapups.append((key, request.headers.get("authorization", ""), body))
        return JSONResponse({"call_key": key, "revision": body["revision"]}, status_code=201)

    @app.post("/v1/calls")
    async def post_call(request: Request) -> JSONResponse:
        stand_in.calls.append((request.headers.get("authorization", ""), await request.json()))
        status, body = stand_in.answer
        return JSONResponse(body, status_code=status)

    @app.get("/v1/agents/{extension}/events")
    def events(extension: str, request: Request) -> StreamingResponse:
        stand_in.stream_auth.append(request.headers.get("authorization", ""))

        async def stream() -> AsyncIterator[str]:
            n = 0
            yield ": hello\n\n"
            while not stand_in.stop.is_set():
                try:
                    pop = stand_in.pops.get_nowait()
                except queue.Empty:
                    await asyncio.sleep(0.05)
                    continue
                n += 1
                yield f"id: {n}\nevent: pop\ndata: {json.dumps(pop)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    with ServerThread(app, graceful=2).start() as server:
        stand_in.url = server.url
        yield stand_in
        stand_in.stop.set()


def _call(state: str, **extra: Any) -> dict[str, Any]:
    call = {
        "key": "1:0000AA01", "company_id": "1", "user_call_id": "0000AA01",
        "direction": "inbound", "state": state, "extension": "201",
        "remote_number": "0612345678", "remote_e164": "+390612345678",
        "external_id": None, "ring_at": "2025-03-04T09:30:00Z",
    }  # fmt: skip
    call.update(extra)
    return call


def test_incoming_call_is_announced_and_dial_posts_to_the_api(service: StandIn) -> None:
    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    contact = {
        "connector": "hubspot", "record_type": "contact", "record_id": "1234", "name": "Anna",
        "url": "https://app-eu1.hubspot.com/contacts/7654321/record/0-1/1234", "candidates": [],
    }  # fmt: skip
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{service.url}/host")

            def messages() -> list[dict[str, Any]]:
                result: list[dict[str, Any]] = page.evaluate("window.messages")
                return result

            def of_type(kind: str) -> list[dict[str, Any]]:
                return [m for m in messages() if m.get("type") == kind]

            init = wait_until(lambda: of_type("INITIALIZED"), "INITIALIZED")
            assert init[0]["data"] == {"isLoggedIn": True}
            wait_until(lambda: service.stream_auth, "the event stream")
            assert service.stream_auth[0] == f"Bearer {API_TOKEN}"

            service.pops.put({"call": _call("ringing"), "contacts": {"hubspot": contact}})
            incoming = wait_until(lambda: of_type("INCOMING_CALL"), "INCOMING_CALL")[0]["data"]
            assert incoming["externalCallId"] == "1:0000AA01"
            assert incoming["fromNumber"] == "+390612345678"
            assert incoming["toNumber"] == "201"
            assert incoming["createEngagement"] is False
            nav = wait_until(lambda: of_type("NAVIGATE_TO_RECORD"), "NAVIGATE_TO_RECORD")[0]["data"]
            assert nav["objectCoordinates"] == {
                "portalId": 7654321, "objectId": 1234, "objectTypeId": "0-1",
            }  # fmt: skip

            service.pops.put({"call": _call("answered"), "contacts": {}})
            service.pops.put({"call": _call("ended", outcome="answered"), "contacts": {}})
            wait_until(lambda: of_type("CALL_ANSWERED"), "CALL_ANSWERED")
            ended = wait_until(lambda: of_type("CALL_ENDED"), "CALL_ENDED")[0]["data"]
            assert ended["callEndStatus"] == "COMPLETED"
            completed = wait_until(lambda: of_type("CALL_COMPLETED"), "CALL_COMPLETED")[0]["data"]
            assert completed == {"externalCallId": "1:0000AA01", "hideWidget": True}
            assert len(of_type("INCOMING_CALL")) == 1

            page.evaluate("window.dial('+390698765432', 501)")
            wait_until(lambda: service.calls, "POST /v1/calls")
            auth, body = service.calls[0]
            assert auth == f"Bearer {API_TOKEN}"
            assert body == {
                "agent": "201",
                "number": "+390698765432",
                "crm": {"connector": "hubspot", "record_type": "contact", "record_id": "501"},
            }
            out = wait_until(lambda: of_type("OUTGOING_CALL_STARTED"), "OUTGOING_CALL_STARTED")
            assert out[0]["data"]["externalCallId"] == "cbx-0001"
            assert out[0]["data"]["createEngagement"] is False
            assert out[0]["data"]["toNumber"] == "+390698765432"
        finally:
            browser.close()


def test_unconfirmed_dial_says_check_your_phone_and_is_not_an_error(service: StandIn) -> None:
    """The PBX's answer to CallReq was unreadable: the phone may ring. No error for HubSpot to
    offer a retry on; a second dial answered with the same request announces no new call."""
    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    service.answer = (202, {"external_id": "cbx-0002", "state": "unconfirmed"})
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{service.url}/host")

            def of_type(kind: str) -> list[dict[str, Any]]:
                messages: list[dict[str, Any]] = page.evaluate("window.messages")
                return [m for m in messages if m.get("type") == kind]

            def status() -> str:
                text: str = page.frames[1].text_content("body") or ""
                return text

            wait_until(lambda: of_type("INITIALIZED"), "INITIALIZED")
            page.evaluate("window.dial('+390698765432', 501)")
            wait_until(lambda: "unconfirmed: check your phone" in status(), "the unconfirmed note")
            assert len(of_type("OUTGOING_CALL_STARTED")) == 1
            service.answer = (200, {"external_id": "cbx-0002", "state": "ringing"})
            page.evaluate("window.dial('+390698765432', 501)")
            wait_until(lambda: "already calling" in status(), "the repeat note")
            assert len(service.calls) == 2
            assert len(of_type("OUTGOING_CALL_STARTED")) == 1
            assert not [m for m in page.evaluate("window.messages") if "ERROR" in str(m)]
        finally:
            browser.close()


def test_page_and_sdk_are_served(service: StandIn) -> None:
    import httpx

    page = httpx.get(f"{service.url}/plugins/hubspot/calling")
    assert page.status_code == 200
    assert 'src="static/calling.js"' in page.text
    sdk = httpx.get(f"{service.url}/plugins/hubspot/static/calling-extensions-sdk.esm.js")
    assert sdk.status_code == 200
    assert "javascript" in sdk.headers["content-type"]
    assert httpx.get(f"{service.url}/plugins/hubspot/static/../settings.py").status_code == 404


def test_the_agent_wraps_up_an_ambiguous_call_from_the_keyboard(service: StandIn) -> None:
    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    def person(record_id: str, name: str) -> dict[str, Any]:
        return {"connector": "hubspot", "record_type": "contact", "record_id": record_id,
                "name": name, "candidates": []}  # fmt: skip

    both = {**person("1234", "Anna"), "candidates": [person("1234", "Anna"), person("5678", "Ada")]}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{service.url}/host")
            wait_until(lambda: service.stream_auth, "the event stream")
            service.pops.put({"call": _call("ringing"), "contacts": {"hubspot": both}})
            frame = page.frame_locator("iframe")
            frame.locator("#wrapup").wait_for(state="visible", timeout=30_000)
            frame.locator("#wrapup-notes").focus()
            page.keyboard.type("Ada, not Anna")
            page.keyboard.press("Tab")
            page.keyboard.press("ArrowDown")  # (as logged) -> Connected
            page.keyboard.press("Tab")
            page.keyboard.press("ArrowDown")  # (as logged) -> Anna
            page.keyboard.press("ArrowDown")  # -> Ada
            page.keyboard.press("Control+Enter")
            wait_until(lambda: service.wrapups, "POST /v1/calls/{key}/wrap-up")
            key, auth, body = service.wrapups[0]
            assert (key, auth) == ("1:0000AA01", f"Bearer {API_TOKEN}")
            assert body == {
                "notes": "Ada, not Anna",
                "outcome": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
                "record": {"connector": "hubspot", "record_type": "contact", "record_id": "5678"},
                "revision": 1,
            }
            result = frame.locator("#wrapup-result")
            wait_until(lambda: result.text_content() == "Saved (revision 1)", "the saved message")
            frame.locator("#wrapup-notes").focus()
            page.keyboard.press("Control+Enter")
            wait_until(lambda: len(service.wrapups) == 2, "the second save")
            assert service.wrapups[1][2]["revision"] == 2
        finally:
            browser.close()
