"""The wrap-up form in a real browser, keyboard only, on the demo's directory.

An ambiguous call (the Bianchi switchboard rings two contacts) ends; the agent, without the
mouse, writes a note, picks an outcome, searches the record and saves with Ctrl+Enter. The
directory's activity for the call changes accordingly (notes, outcome, the chosen contact);
a second save amends it again (revision 2).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from callbridge.demo import Demo
from callbridge.testing import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SWITCHBOARD = "02 8765 4321"


def _activity(demo: Demo, call_key: str) -> object:
    found = [a for a in demo.directory.list_activities(200) if a.call_key == call_key]
    return found[0] if found else None


def test_agent_wraps_up_an_ambiguous_call_with_the_keyboard(demo: Demo, page: Page) -> None:
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    call = demo.sim.incoming_call(SWITCHBOARD, "201")
    form = page.locator("#wrapup")
    expect(form).to_be_visible()
    # The ambiguous lookup's candidates are the first choices.
    expect(page.locator("#wrapup-record option")).to_have_count(2)
    demo.sim.answer(call)
    demo.sim.hangup(call, by="remote")
    expect(page.locator("#call-state")).to_have_text("ended")
    call_key = form.get_attribute("data-call-key")
    assert call_key
    wait_until(lambda: _activity(demo, call_key) is not None, "the activity at hang-up")
    first = _activity(demo, call_key)
    assert first is not None and first.contact_id is None and first.notes is None  # type: ignore[attr-defined]

    page.keyboard.press("Alt+n")  # accesskey of the notes (Chromium: Alt)
    expect(page.locator("#wrapup-notes")).to_be_focused()
    page.keyboard.type("Wants a quote for 3 trucks")
    page.keyboard.press("Tab")
    expect(page.locator("#wrapup-outcome")).to_be_focused()
    page.keyboard.type("interested")
    page.keyboard.press("Alt+r")
    expect(page.locator("#wrapup-search")).to_be_focused()
    page.keyboard.type("luca")
    expect(page.locator("#wrapup-record option")).to_have_count(1)
    expect(page.locator("#wrapup-record option")).to_contain_text("Luca Bianchi")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#wrapup-record")).to_be_focused()
    page.keyboard.press("Control+Enter")
    expect(page.locator("#wrapup-result")).to_have_text("Saved (revision 1)")

    luca = next(c.id for c in demo.directory.list_contacts() if c.name == "Luca Bianchi")

    def amended(revision: int) -> bool:
        found = _activity(demo, call_key)
        return found is not None and found.wrapup_revision == revision  # type: ignore[attr-defined]

    wait_until(lambda: amended(1), "the activity amended with revision 1")
    activity = _activity(demo, call_key)
    assert activity.notes == "Wants a quote for 3 trucks"  # type: ignore[attr-defined]
    assert activity.disposition == "interested"  # type: ignore[attr-defined]
    assert activity.contact_id == luca  # type: ignore[attr-defined]

    # The agent corrects the note: the same activity is amended again, as revision 2.
    page.locator("#wrapup-notes").focus()
    page.keyboard.press("End")
    page.keyboard.type(", call back Monday")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#wrapup-result")).to_have_text("Saved (revision 2)")
    wait_until(lambda: amended(2), "the activity amended with revision 2")
    activity = _activity(demo, call_key)
    assert activity.notes == "Wants a quote for 3 trucks, call back Monday"  # type: ignore[attr-defined]
    assert activity.id == first.id  # type: ignore[attr-defined]
