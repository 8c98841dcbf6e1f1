"""The softphone page's record search and create, in headless Chromium, keyboard only.

The page of ``test_sf_softphone`` (same stand-in Open CTI and browser), served with the two
routes search and create go through: ``GET /v1/contacts/search`` answers from a small list
(recording each query) and
``POST /v1/contacts`` creates a Lead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import Request
from fastapi.responses import JSONResponse
from test_sf_softphone import (  # noqa: F401 - page is a fixture
    CONTACT,
    FakeService,
    _app,
    _pop,
    page,
    page_plugin,
)

from callbridge.testing import ServerThread, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RECORDS = [
    {**CONTACT, "record_id": "003000000000003AAA", "name": "Giulia Bianchi", "company": "Bianchi"},
    {**CONTACT, "record_id": "001000000000004AAA", "record_type": "Account", "name": "Bianchi Srl"},
    {**CONTACT, "record_id": "003000000000005AAA", "name": "Luca Verdi", "company": "Verdi"},
]


@dataclass
class Searchable(FakeService):
    """The fake service, with the queries and creations it received."""

    queries: list[str] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def service() -> Iterator[Searchable]:
    fake = Searchable()
    app = _app(page_plugin(), fake)

    @app.get("/v1/contacts/search")
    async def search(connector: str, q: str) -> JSONResponse:
        fake.queries.append(q)
        words = q.lower().split()
        found = [r for r in RECORDS if all(w in str(r["name"]).lower() for w in words)]
        return JSONResponse(found if connector == "salesforce" else [])

    @app.post("/v1/contacts")
    async def create(request: Request) -> JSONResponse:
        body = await request.json()
        fake.created.append(body)
        made = {
            **CONTACT,
            "record_type": "Lead",
            "record_id": "00Q000000000009AAA",
            "name": body["name"],
            "company": body.get("company"),
        }
        return JSONResponse(made, status_code=201)

    server = ServerThread(app).start()
    fake.url = server.url
    yield fake
    server.stop()


def _chosen(service: Searchable) -> tuple[str, str]:
    """The record of the one wrap-up saved: (type, id), on Salesforce."""
    (saved,) = service.wrapups
    record = saved["record"]
    assert record["connector"] == "salesforce"
    return record["record_type"], record["record_id"]


def _saved(tab: Any, revision: int) -> None:
    tab.wait_for_function(
        "(r) => document.getElementById('wrapup-result').textContent === `Saved (revision ${r})`",
        arg=revision,
    )


def test_an_ambiguous_call_is_put_on_a_record_found_by_typing(
    service: Searchable,
    page: Any,  # noqa: F811 - the fixture
) -> None:
    wait_until(lambda: bool(service.streams), "the page to open the agent stream")
    other = {**CONTACT, "record_id": "003000000000002AAA", "name": "Ada Rossi"}
    service.push_pop(_pop("ringing", {**CONTACT, "candidates": [CONTACT, other]}), 1)
    page.wait_for_selector("#wrapup-find:not([hidden])", timeout=30_000)
    assert page.locator("#wrapup-new").is_hidden()  # the number matched: nothing to create
    page.keyboard.press("Alt+r")
    page.keyboard.type("bianchi", delay=20)
    page.wait_for_function(
        "() => document.getElementById('wrapup-found').textContent === '2 found: ↓ to choose'"
    )
    # Debounced: searches go after a pause in the typing, never for fewer than 2 characters.
    assert service.queries[-1] == "bianchi" and all(len(q) >= 2 for q in service.queries)
    options = page.locator("#wrapup-record option").all_text_contents()
    assert options == [
        "(as logged)",
        "Contact: Giulia Bianchi (Bianchi)",
        "Account: Bianchi Srl (Acme)",
    ]
    page.keyboard.press("ArrowDown")  # to the list, on the first match
    page.keyboard.press("ArrowDown")  # -> Bianchi Srl
    page.keyboard.press("Control+Enter")
    _saved(page, 1)
    assert _chosen(service) == ("Account", "001000000000004AAA")
    # Esc in the list goes back to the search; Esc there clears it: the candidates again.
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.getElementById('wrapup-record').options.length === 3")
    options = page.locator("#wrapup-record option").all_text_contents()
    assert options == ["(as logged)", "Contact: Mario Rossi (Acme)", "Contact: Ada Rossi (Acme)"]
    assert page.evaluate("document.activeElement.id") == "wrapup-search"


def test_an_unknown_number_gets_a_new_lead_from_the_keyboard(
    service: Searchable,
    page: Any,  # noqa: F811 - the fixture
) -> None:
    wait_until(lambda: bool(service.streams), "the page to open the agent stream")
    service.push_pop(_pop("ringing", None), 1)
    page.wait_for_selector("#wrapup-new:not([hidden])", timeout=30_000)
    page.locator("#new-name").focus()
    for text in ("Paolo Neri", "Neri Costruzioni"):  # name, Tab, company, Tab
        page.keyboard.type(text)
        page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # Contact -> Lead
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.getElementById('wrapup-found').textContent.startsWith('Created Lead')"
    )
    (created,) = service.created
    assert created == {
        "connector": "salesforce",
        "name": "Paolo Neri",
        "number": "+390612345678",
        "kind": "lead",
        "company": "Neri Costruzioni",
        "extension": "201",
    }
    assert page.locator("#wrapup-new").is_hidden()
    assert page.evaluate("document.activeElement.id") == "wrapup-record"
    page.keyboard.press("Control+Enter")  # the new Lead is chosen: the Task moves to it
    _saved(page, 1)
    assert _chosen(service) == ("Lead", "00Q000000000009AAA")
    assert service.queries == []
