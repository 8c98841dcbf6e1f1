"""The agent panel in a real browser: Debian's headless Chromium driven by Playwright.

callbridge runs for real (HTTP on a free port, engine, journal, the seeded directory) with
the simulator pointed at it (the demo's assembly). The page is opened the way a CRM link
opens it, ``/agent#extension=201&token=...``; the test then plays calls on the simulator and
reads what an agent would see.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from callbridge.demo import Demo

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _connected(page: Page) -> None:
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")


def test_inbound_call_pops_with_the_directory_contact(demo: Demo, page: Page) -> None:
    _connected(page)
    # The token came in the URL fragment; the page removes it from the address bar.
    assert "token=" not in page.url
    call = demo.sim.incoming_call("+39 011 555 0101", "201", caller_name="Francesca Romano")
    expect(page.locator("#current")).to_be_visible()
    expect(page.locator("#call-state")).to_have_text("ringing")
    expect(page.locator("#caller-name")).to_have_text("Francesca Romano")
    expect(page.locator("#caller-company")).to_contain_text("Studio Romano")
    expect(page.locator("#caller-number")).to_have_text("+390115550101")
    expect(page.locator("#call-direction")).to_have_text("inbound")
    demo.sim.answer(call)
    expect(page.locator("#call-state")).to_have_text("answered")
    demo.sim.hangup(call, by="remote")
    expect(page.locator("#call-state")).to_have_text("ended")
    expect(page.locator("#history li").first).to_contain_text("Francesca Romano")
    expect(page.locator("#history li").first).to_contain_text("answered")


def test_call_button_sends_call_req_with_the_external_id(demo: Demo, page: Page) -> None:
    _connected(page)
    page.locator("#dial-number").fill("+39 06 1234 5678")
    page.get_by_role("button", name="Call", exact=True).click()
    result = page.locator("#dial-result")
    expect(result).to_have_attribute("data-external-id", re.compile(r"^[A-Za-z0-9._-]{1,40}$"))
    external_id = result.get_attribute("data-external-id")
    assert external_id
    sent = [
        e
        for e in demo.sim.soap_log
        if e.command == "CallReq" and e.fields.get("call_req_ext_id") == external_id
    ]
    assert len(sent) == 1 and sent[0].ok, demo.sim.soap_log
    assert sent[0].fields["param1"] == "auth-mario@acme"
    assert sent[0].fields["call_req_number"].replace(" ", "") == "+390612345678"

    # The PBX's events come back with the external id: the panel shows the call, the
    # customer answers, and the agent hangs up with the panel's button (CallDisconnect).
    expect(page.locator("#call-direction")).to_have_text("outbound")
    expect(page.locator("#caller-name")).to_have_text("Mario Rossi")
    expect(page.locator("#call-state")).to_have_text("answered")
    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#call-state")).to_have_text("ended")
    assert any(
        e.command == "CallDisconnect" and e.ok and e.username == "auth-callbridge@acme"
        for e in demo.sim.soap_log
    )
    expect(page.locator("#history li").first).to_contain_text("outbound")


def test_unreadable_pbx_answer_says_check_your_phone_not_retry(demo: Demo, page: Page) -> None:
    """A CallReq answered "OK" (not SOAP) may have rung the phone: the panel says so, and a
    second click on the same number returns the first request instead of ringing again."""
    _connected(page)
    # The PBX's events soon move the request on ("ringing"): keep every text the panel showed.
    page.evaluate(
        """() => { window.__dial = []; new MutationObserver(() => window.__dial.push(
             document.getElementById('dial-result').textContent)).observe(
             document.getElementById('dial-result'), {childList: true, characterData: true,
             subtree: true}); }"""
    )
    shown = lambda: page.evaluate("() => window.__dial")  # noqa: E731
    demo.sim.service.answer = "ok"
    try:
        page.locator("#dial-number").fill("+39 06 7777 1234")
        page.get_by_role("button", name="Call", exact=True).click()
        expect(page.locator("#dial-result")).to_have_attribute("data-external-id", re.compile("."))
        page.wait_for_function(
            "() => window.__dial.some(t => t.includes('unconfirmed: check your phone'))"
        )
        external_id = page.locator("#dial-result").get_attribute("data-external-id")
        page.get_by_role("button", name="Call", exact=True).click()
        page.wait_for_function("() => window.__dial.some(t => t.startsWith('Already calling'))")
        assert page.locator("#dial-result").get_attribute("data-external-id") == external_id
    finally:
        demo.sim.service.answer = "soap"
    assert not [t for t in shown() if "Failed" in t or "refused" in t], shown()
    sent = [e for e in demo.sim.soap_log if e.fields.get("call_req_number") == "+390677771234"]
    assert len(sent) == 1, sent
    expect(page.locator("#call-state")).to_have_text("answered")
    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#call-state")).to_have_text("ended")


def test_request_no_call_followed_is_shown_unmatched(demo: Demo, page: Page) -> None:
    """A request the PBX never reported expires to unmatched, and the panel says so."""
    from datetime import UTC, datetime, timedelta

    from callbridge.models import Originate

    _connected(page)
    demo.running.services.journal.create_originate(
        Originate(
            external_id="cb-panel-lost",
            user="auth-mario@acme",
            extension="201",
            number="+39 06 4444 0000",
            created_at=datetime.now(UTC) - timedelta(minutes=5),
            state="sent",
            company=demo.running.services.companies.names[0],  # the panel's: the demo's first
        )
    )
    expect(page.locator("#dial-result")).to_contain_text("the PBX reported no call")
    expect(page.locator("#dial-result")).to_have_attribute("data-state", "unmatched")


def test_panel_reconnects_and_replays_what_it_missed(demo: Demo, page: Page) -> None:
    _connected(page)
    before = page.locator("#history li").count()
    demo.stop_http()
    expect(page.locator("#status")).to_have_attribute("data-state", "reconnecting")

    # While the panel is cut off, a call rings 201 and is missed: the engine journals its
    # pops (the PBX's events reach it through another way in: the engine's ingest).
    base = {
        "sender_id": "00000065",
        "sender_type": "0",
        "call_id": "0000D0A1",
        "ext_id": "",
        "number": "+39 055 123456",
        "ext": "201",
        "identity": "Alessandro|Conti||0|0",
        "group": "",
        "company_id": "1",
    }
    demo.engine.ingest({**base, "ssn_event": "16"})
    demo.engine.ingest({**base, "ssn_event": "20"})
    assert demo.engine.wait_idle(30)

    demo.start_http()
    _connected(page)
    # Replayed from the journal after the last id the panel had seen: the missed call is
    # there, and nothing seen before the drop came twice.
    expect(page.locator("#caller-name")).to_have_text("Alessandro Conti")
    expect(page.locator("#history li").first).to_contain_text("Alessandro Conti")
    expect(page.locator("#history li").first).to_contain_text("missed")
    expect(page.locator("#history li")).to_have_count(before + 1)

    # And the live feed works again: a new call pops at once.
    call = demo.sim.incoming_call("+49 30 12345678", "201", caller_name="Hans Müller")
    expect(page.locator("#caller-name")).to_have_text("Hans Müller")
    expect(page.locator("#call-state")).to_have_text("ringing")
    demo.sim.hangup(call, by="remote")
    expect(page.locator("#call-state")).to_have_text("ended")
    expect(page.locator("#history li")).to_have_count(before + 2)
