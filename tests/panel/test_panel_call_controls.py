"""The agent panel's call controls (Hold, Retrieve, Transfer) in a real browser.

Same set-up as ``test_panel_browser.py``: callbridge and the simulator run for real (the
demo's assembly), Debian's headless Chromium opens ``/agent#extension=201&token=...`` through
Playwright. Each button is clicked on a live inbound call and the test reads, in the
simulator's ``soap_log``, the SOAP command callbridge sent for it: the right command, for the
agent's PBX login, on the agent's own user call id.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from callbridge.demo import Demo
from callbridge.sim.soap_server import SoapLogEntry
from callbridge.testing import wait_until

#: Extension 201's PBX login in the demo (``callbridge.demo.settings.DEMO_AGENTS``).
AGENT_LOGIN = "auth-mario@acme"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _sent(demo: Demo, command: str, start: int) -> list[SoapLogEntry]:
    """The ``command`` requests the simulator received after the first ``start`` ones."""
    return [e for e in demo.sim.soap_log[start:] if e.command == command]


def _click_and_wait(demo: Demo, page: Page, button: str, command: str) -> SoapLogEntry:
    """Click ``button`` and return the one ``command`` request it caused."""
    start = len(demo.sim.soap_log)
    page.get_by_role("button", name=button, exact=True).click()
    wait_until(lambda: _sent(demo, command, start), f"{command} after clicking {button}")
    [entry] = _sent(demo, command, start)
    return entry


def _answered_inbound_call(demo: Demo, page: Page, number: str, name: str) -> str:
    """Ring 201 from ``number``, answer, wait for the panel to show it; its user call id."""
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    call = demo.sim.incoming_call(number, "201", caller_name=name)
    expect(page.locator("#caller-name")).to_have_text(name)
    leg = demo.sim.answer(call)
    expect(page.locator("#call-state")).to_have_text("answered")
    return leg.user_call_id


def test_hold_and_retrieve_on_the_answered_call(demo: Demo, page: Page) -> None:
    user_call_id = _answered_inbound_call(demo, page, "+39 011 555 0101", "Francesca Romano")

    hold = _click_and_wait(demo, page, "Hold", "CallHold")
    assert hold.ok, hold
    assert hold.fields == {"param1": AGENT_LOGIN, "param2": user_call_id}
    expect(page.locator("#status")).to_have_text("hold sent")

    retrieve = _click_and_wait(demo, page, "Retrieve", "CallRetrieve")
    assert retrieve.ok, retrieve
    assert retrieve.fields == {"param1": AGENT_LOGIN, "param2": user_call_id}
    expect(page.locator("#status")).to_have_text("retrieve sent")
    # A command's result is no news about the event stream: the panel still reads connected.
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")

    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#call-state")).to_have_text("ended")


def test_transfer_to_an_extension_sends_call_divert(demo: Demo, page: Page) -> None:
    user_call_id = _answered_inbound_call(demo, page, "+49 30 12345678", "Hans Müller")
    page.get_by_label("Transfer to").fill(" 202 ")

    divert = _click_and_wait(demo, page, "Transfer", "CallDivert")
    # POST /v1/calls/{ref}/transfer with to_extension is CallDivert (server/calls.py).
    assert divert.fields == {
        "param1": AGENT_LOGIN,
        "call_divert_callid": user_call_id,
        "call_divert_recipient": "202",
    }
    assert not _sent(demo, "CallTransfer", 0)
    # The simulator, like the PBX it models, diverts only a ringing call: for an answered
    # call it refuses, and the panel says so without claiming the stream dropped.
    assert not divert.ok and "only a ringing call can be diverted" in (divert.fault or "")
    expect(page.locator("#status")).to_contain_text("transfer failed")
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")

    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#call-state")).to_have_text("ended")
