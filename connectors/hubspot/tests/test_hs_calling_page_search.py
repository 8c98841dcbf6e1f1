"""The calling page's contact search and create, in headless Chromium, keyboard only.

The page inside the HubSpot stand-in of ``test_hs_calling_page``; its stand-in API gains the
two routes search and create go through: ``GET /v1/contacts/search`` answers from a small
list (recording each query) and ``POST /v1/contacts`` creates a contact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Request
from fastapi.responses import JSONResponse
from test_hs_calling_page import ARGS, StandIn, _call, sdk_built  # noqa: F401
from test_hs_calling_page import service as stand_in  # noqa: F401 - the fixture

from callbridge.testing import require, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _person(record_id: str, name: str, company: str | None = None) -> dict[str, Any]:
    return {
        "connector": "hubspot",
        "record_type": "contact",
        "record_id": record_id,
        "name": name,
        "company": company,
        "candidates": [],
    }


PEOPLE = [_person("901", "Giulia Bianchi", "Bianchi Srl"), _person("902", "Luca Bianchi")]


class Searching:
    """What the stand-in's search and create routes received."""

    def __init__(self, service: StandIn) -> None:
        self.service = service
        self.queries: list[str] = []
        self.created: list[dict[str, Any]] = []


@pytest.fixture
def searching(stand_in: StandIn) -> Searching:  # noqa: F811 - the fixture
    seen = Searching(stand_in)
    app = stand_in.app
    assert app is not None

    @app.get("/v1/contacts/search")
    def search(connector: str, q: str) -> JSONResponse:
        seen.queries.append(q)
        words = q.lower().split()
        return JSONResponse([p for p in PEOPLE if all(w in str(p["name"]).lower() for w in words)])

    @app.post("/v1/contacts")
    async def create(request: Request) -> JSONResponse:
        body = await request.json()
        seen.created.append(body)
        return JSONResponse(_person("903", body["name"], body.get("company")), status_code=201)

    return seen


@pytest.fixture
def frame(searching: Searching) -> Iterator[tuple[Any, Any]]:
    """(page, the calling page's frame) in the stand-in, the event stream open."""
    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{searching.service.url}/host")
            wait_until(lambda: searching.service.stream_auth, "the event stream")
            yield page, page.frame_locator("iframe")
        finally:
            browser.close()


def _chosen(service: StandIn) -> Any:
    wait_until(lambda: service.wrapups, "POST /v1/calls/{key}/wrap-up")
    return service.wrapups[0][2]["record"]


def test_an_ambiguous_call_is_put_on_a_contact_found_by_typing(
    searching: Searching, frame: tuple[Any, Any]
) -> None:
    page, calling = frame
    both = {
        **_person("1234", "Anna"),
        "candidates": [_person("1234", "Anna"), _person("5678", "Ada")],
    }
    searching.service.pops.put({"call": _call("ringing"), "contacts": {"hubspot": both}})
    calling.locator("#wrapup-find").wait_for(state="visible", timeout=30_000)
    assert calling.locator("#wrapup-new").is_hidden()
    calling.locator("#wrapup-notes").focus()
    page.keyboard.press("Alt+r")
    page.keyboard.type("bianchi", delay=20)
    found = calling.locator("#wrapup-found")
    wait_until(lambda: found.text_content() == "2 found: ↓ to choose", "the search's answer")
    # Debounced: searches go after a pause in the typing, never for fewer than 2 characters.
    assert searching.queries[-1] == "bianchi" and all(len(q) >= 2 for q in searching.queries)
    options = calling.locator("#wrapup-record option").all_text_contents()
    assert options == ["(as logged)", "Giulia Bianchi (Bianchi Srl)", "Luca Bianchi"]
    page.keyboard.press("ArrowDown")  # to the list, on the first match
    page.keyboard.press("ArrowDown")  # -> Luca
    page.keyboard.press("Control+Enter")
    assert _chosen(searching.service) == {
        "connector": "hubspot",
        "record_type": "contact",
        "record_id": "902",
    }
    page.keyboard.press("Escape")  # back to the search
    page.keyboard.press("Escape")  # cleared: the candidates again
    wait_until(
        lambda: (
            calling.locator("#wrapup-record option").all_text_contents()
            == ["(as logged)", "Anna", "Ada"]
        ),
        "the candidates back",
    )


def test_an_unknown_number_gets_a_new_contact_from_the_keyboard(
    searching: Searching, frame: tuple[Any, Any]
) -> None:
    page, calling = frame
    searching.service.pops.put({"call": _call("ringing"), "contacts": {}})
    calling.locator("#wrapup-new").wait_for(state="visible", timeout=30_000)
    calling.locator("#new-name").focus()
    for text in ("Paolo Neri", "Neri Costruzioni"):  # name, Tab, company, Tab
        page.keyboard.type(text)
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # as a contact
    found = calling.locator("#wrapup-found")
    wait_until(lambda: (found.text_content() or "").startswith("Created Paolo Neri"), "created")
    assert searching.created == [
        {
            "connector": "hubspot",
            "name": "Paolo Neri",
            "number": "+390612345678",
            "kind": "contact",
            "company": "Neri Costruzioni",
            "extension": "201",
        }
    ]
    assert calling.locator("#wrapup-new").is_hidden()
    page.keyboard.press("Control+Enter")  # focus is on the list, the new contact chosen
    assert _chosen(searching.service) == {
        "connector": "hubspot",
        "record_type": "contact",
        "record_id": "903",
    }
