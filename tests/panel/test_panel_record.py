"""The panel's Record button: CallRecStart on the agent's call, and the call marked recorded.

The demo's assembly with the simulator as the PBX, in a real browser (as
``test_panel_call_controls.py``): the button sends CallRecStart for the agent's login on its
own user call id, the simulator's leg records, and the journal holds the call's default
recording reference (its user call id), which the activity's link is made of.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from callbridge.demo import Demo
from callbridge.testing import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_record_starts_recording_the_answered_call(demo: Demo, page: Page) -> None:
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    call = demo.sim.incoming_call("+39 011 555 0101", "201", caller_name="Francesca Romano")
    expect(page.locator("#caller-name")).to_have_text("Francesca Romano")
    leg = demo.sim.answer(call)
    expect(page.locator("#call-state")).to_have_text("answered")
    start = len(demo.sim.soap_log)
    page.get_by_role("button", name="Record", exact=True).click()
    expect(page.locator("#status")).to_have_text("record sent")
    sent = [e for e in demo.sim.soap_log[start:] if e.command == "CallRecStart"]
    assert len(sent) == 1 and sent[0].ok
    assert sent[0].fields == {"param1": "auth-mario@acme", "param2": leg.user_call_id}
    assert leg.recording is True
    journal = demo.running.services.journal
    key = next(c.key for c in journal.list_calls(50) if c.user_call_id == leg.user_call_id)
    wait_until(lambda: journal.get_recording(key) == leg.user_call_id, "the call marked recorded")
    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#call-state")).to_have_text("ended")
