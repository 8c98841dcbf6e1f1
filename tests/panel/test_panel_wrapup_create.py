"""The panel's record search and create, keyboard only, on the demo's directory.

An unknown number rings: the agent creates a contact for it from the wrap-up form (Enter),
saves (Ctrl+Enter), and the directory's activity for the call lands on the new contact. On
an ambiguous call, Esc goes from the list back to the search and clears it (the lookup's
candidates again).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from callbridge.demo import Demo
from callbridge.testing import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UNKNOWN = "+39 345 000 1111"
SWITCHBOARD = "02 8765 4321"


def test_agent_creates_a_contact_for_an_unknown_number(demo: Demo, page: Page) -> None:
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    call = demo.sim.incoming_call(UNKNOWN, "201")
    expect(page.locator("#wrapup-new")).to_be_visible()
    expect(page.locator("#wrapup-record option")).to_have_count(0)
    page.locator("#new-name").focus()
    for text in ("Paolo Neri", "Neri Costruzioni"):  # name, Tab, company, Tab
        page.keyboard.type(text)
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # as a contact
    expect(page.locator("#wrapup-result")).to_have_text(
        "Created Paolo Neri: Ctrl+Enter logs the call on it"
    )
    (paolo,) = [c for c in demo.directory.list_contacts() if c.name == "Paolo Neri"]
    assert paolo.company == "Neri Costruzioni" and paolo.numbers == ["+393450001111"]
    expect(page.locator("#wrapup-new")).to_be_hidden()
    expect(page.locator("#wrapup-record")).to_be_focused()
    page.keyboard.press("Control+Enter")
    expect(page.locator("#wrapup-result")).to_have_text("Saved (revision 1)")
    demo.sim.answer(call)
    demo.sim.hangup(call, by="remote")
    key = page.locator("#wrapup").get_attribute("data-call-key")

    def on_paolo() -> bool:
        found = [a for a in demo.directory.list_activities(200) if a.call_key == key]
        return bool(found) and found[0].contact_id == paolo.id

    wait_until(on_paolo, "the call's activity on the new contact")


def test_escape_goes_back_to_the_search_and_clears_it(demo: Demo, page: Page) -> None:
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    call = demo.sim.incoming_call(SWITCHBOARD, "201")
    options = page.locator("#wrapup-record option")
    expect(options).to_have_count(2)  # the ambiguous lookup's candidates
    expect(page.locator("#wrapup-new")).to_be_hidden()
    page.keyboard.press("Alt+r")
    page.keyboard.type("luca")
    expect(options).to_have_count(1)
    page.keyboard.press("ArrowDown")
    expect(page.locator("#wrapup-record")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#wrapup-search")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#wrapup-search")).to_have_value("")
    expect(options).to_have_count(2)
    demo.sim.hangup(call, by="remote")
