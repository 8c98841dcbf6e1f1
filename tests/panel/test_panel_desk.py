"""The agent panel as a person at a desk uses it, in headless Chromium on the demo's assembly.

The caller's name large with the company under it, the CRM records as buttons reachable by
keyboard, the last calls with their outcome, a ring tone and a desktop notification when a
call rings while the tab is in the background (permission asked once), a dark scheme that
follows the system, and text contrast of at least 4.5:1 in both schemes.

The background tab is the one thing simulated: headless Chromium has no window to hide, so an
init script makes ``document.hidden`` follow ``window.__hidden``. The Notification and Web
Audio APIs are the browser's own; the init script only records what the page asks of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from panel_support import open_page
from playwright.sync_api import Browser, Page, expect

from callbridge.demo import Demo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RECORDER = """
window.__hidden = false;
Object.defineProperty(Document.prototype, "hidden", {
  configurable: true, get() { return window.__hidden; } });
Object.defineProperty(Document.prototype, "visibilityState", {
  configurable: true, get() { return window.__hidden ? "hidden" : "visible"; } });
window.__alerts = { notifications: [], closed: 0, asked: 0, oscillators: 0 };
const RealNotification = window.Notification;
class RecordedNotification extends RealNotification {
  constructor(title, options) {
    super(title, options);
    window.__alerts.notifications.push({ title, body: (options || {}).body || "" });
  }
  close() { window.__alerts.closed += 1; super.close(); }
}
Object.defineProperty(RecordedNotification, "permission", {
  get() { return RealNotification.permission; } });
RecordedNotification.requestPermission = function (...args) {
  window.__alerts.asked += 1;
  return RealNotification.requestPermission(...args);
};
window.Notification = RecordedNotification;
const createOscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__alerts.oscillators += 1;
  return createOscillator.call(this);
};
"""

#: WCAG relative luminance and contrast, computed in the page from the computed colours.
CONTRAST = """
(selector) => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const background = (element) => {
    for (let e = element; e; e = e.parentElement) {
      const rgba = parse(getComputedStyle(e).backgroundColor);
      if (rgba.length === 3 || (rgba.length === 4 && rgba[3] > 0)) return rgba.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const luminance = (rgb) => {
    const [r, g, b] = rgb.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  return [...document.querySelectorAll(selector)].map((element) => {
    const fg = luminance(parse(getComputedStyle(element).color).slice(0, 3));
    const bg = luminance(background(element));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    return { what: selector + " " + element.textContent.trim().slice(0, 30), ratio };
  });
}
"""

#: Every kind of text the panel shows (the call and the history must be on screen).
TEXTS = [
    "header h1",
    "#status",
    "h2",
    "legend",
    "label",
    "#caller-name",
    "#caller-company",
    "#caller-number",
    "#call-direction",
    ".badge",
    ".records a.button",
    ".history .when",
    ".history .direction",
    ".history .who",
    "button",
    "input",
]


@pytest.fixture(scope="module")
def desk(demo: Demo, browser: Browser) -> Iterator[Page]:
    """The panel for extension 202 (its own agent: other modules' calls ring 201)."""
    page, errors = open_page(browser, demo.panel_url("202"), init_script=RECORDER)
    yield page
    page.context.close()
    assert not errors, errors


def _connected(page: Page) -> None:
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")


def _alerts(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("window.__alerts")
    return result


def test_the_caller_is_large_with_the_company_and_crm_buttons(demo: Demo, desk: Page) -> None:
    _connected(desk)
    call = demo.sim.incoming_call("+39 011 555 0101", "202", caller_name="Francesca Romano")
    expect(desk.locator("#caller-name")).to_have_text("Francesca Romano")
    expect(desk.locator("#caller-company")).to_have_text("Studio Romano")
    expect(desk.locator("#call-state")).to_have_attribute("data-value", "ringing")
    sizes = desk.evaluate(
        """() => [document.body, document.getElementById("caller-name")]
             .map((e) => parseFloat(getComputedStyle(e).fontSize))"""
    )
    assert sizes[1] >= 1.8 * sizes[0], sizes

    crm = desk.get_by_role("link", name=re.compile(r"^Open in directory"))
    expect(crm).to_be_visible()
    expect(crm).to_have_attribute("target", "_blank")
    look = crm.evaluate(
        """(e) => { const s = getComputedStyle(e); return [s.display, s.backgroundColor,
                      parseFloat(s.paddingLeft), s.textDecorationLine]; }"""
    )
    assert look[0] == "inline-block" and look[2] > 0 and look[3] == "none", look
    assert look[1] not in ("rgba(0, 0, 0, 0)", "transparent"), look

    # Keyboard: from the caller's number, Tab reaches the CRM button, with a visible focus ring.
    desk.locator("#caller-number").focus()
    desk.keyboard.press("Tab")
    expect(crm).to_be_focused()
    outline = crm.evaluate("(e) => getComputedStyle(e).outlineStyle")
    assert outline == "solid", outline

    demo.sim.hangup(call, by="remote")
    expect(desk.locator("#call-state")).to_have_text("ended")


def test_the_last_calls_say_how_each_ended(demo: Demo, desk: Page) -> None:
    _connected(desk)
    answered = demo.sim.incoming_call("+49 30 12345678", "202", caller_name="Hans Müller")
    expect(desk.locator("#caller-name")).to_have_text("Hans Müller")
    demo.sim.answer(answered)
    expect(desk.locator("#call-state")).to_have_text("answered")
    demo.sim.hangup(answered, by="remote")
    expect(desk.locator("#history li").first).to_have_attribute("data-outcome", "answered")

    missed = demo.sim.incoming_call("+39 055 123456", "202", caller_name="Alessandro Conti")
    expect(desk.locator("#call-state")).to_have_text("ringing")
    demo.sim.hangup(missed, by="remote")
    latest = desk.locator("#history li").first
    expect(latest).to_have_attribute("data-outcome", "missed")
    expect(latest.locator(".badge")).to_have_text("missed")
    expect(latest.locator(".direction")).to_have_text("inbound")
    expect(desk.locator("#history li").nth(1).locator(".badge")).to_have_text("answered")
    expect(desk.locator("#history li").nth(1).locator(".who")).to_have_text("Hans Müller")
    # The outcome is a word as well as a colour, read in order by assistive technology.
    line = latest.inner_text().replace("\n", " ")
    assert re.fullmatch(r"\d\d?:\d\d( [AP]M)? inbound Alessandro Conti missed", line), line


def test_a_call_in_a_background_tab_rings_and_notifies(demo: Demo, desk: Page) -> None:
    _connected(desk)
    notify = desk.get_by_label("Show a desktop notification")
    expect(desk.get_by_label("Play a ring tone")).to_be_checked()
    expect(notify).not_to_be_checked()
    # Ticking the box asks the browser's permission; headless Chromium answers "denied" by
    # itself, and the panel says where to change that instead of asking again.
    notify.check()
    desk.wait_for_function("window.__alerts.asked === 1")
    expect(notify).not_to_be_checked()
    expect(notify).to_be_disabled()
    expect(desk.locator("#alert-note")).to_contain_text("blocked for this site")
    # The agent allows notifications in the browser's settings: the box works, no new prompt.
    desk.context.grant_permissions(["notifications"])
    desk.reload()
    _connected(desk)
    expect(notify).to_be_enabled()
    notify.check()
    expect(notify).to_be_checked()
    assert _alerts(desk)["asked"] == 0
    desk.reload()  # the choice is kept
    _connected(desk)
    expect(notify).to_be_checked()

    # A call that rings while the agent looks at the tab: no tone, no notification.
    seen = demo.sim.incoming_call("+39 011 555 0101", "202", caller_name="Francesca Romano")
    expect(desk.locator("#call-state")).to_have_text("ringing")
    desk.wait_for_timeout(300)
    assert _alerts(desk)["notifications"] == [] and _alerts(desk)["oscillators"] == 0
    demo.sim.hangup(seen, by="remote")
    expect(desk.locator("#call-state")).to_have_text("ended")

    # The agent clicked in the panel before (browsers start audio only after a gesture),
    # then moved to another tab: the next call rings and pops a notification.
    desk.locator("#history-title").click()
    desk.evaluate("window.__hidden = true; document.dispatchEvent(new Event('visibilitychange'))")
    call = demo.sim.incoming_call("+39 011 555 0101", "202", caller_name="Francesca Romano")
    expect(desk.locator("#alerts")).to_have_attribute("data-ringing", "true")
    desk.wait_for_function("window.__alerts.notifications.length === 1")
    alerts = _alerts(desk)
    assert alerts["notifications"][0]["title"] == "Call from Francesca Romano"
    assert alerts["notifications"][0]["body"] == "Studio Romano · +390115550101"
    assert alerts["oscillators"] >= 2  # the two tones of one ring
    assert desk.evaluate("new AudioContext().state") in ("running", "suspended")

    # Answered elsewhere or hung up: the tone stops and the notification goes.
    demo.sim.hangup(call, by="remote")
    expect(desk.locator("#alerts")).not_to_have_attribute("data-ringing", "true")
    desk.wait_for_function("window.__alerts.closed >= 1")
    desk.evaluate("window.__hidden = false; document.dispatchEvent(new Event('visibilitychange'))")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_dark_mode_follows_the_system_and_every_text_is_readable(
    demo: Demo, browser: Browser, scheme: str
) -> None:
    # One agent per scheme: a new page replays its agent's earlier calls.
    agent = {"light": "203", "dark": "204"}[scheme]
    page, errors = open_page(browser, demo.panel_url(agent), color_scheme=scheme)
    try:
        _connected(page)
        call = demo.sim.incoming_call("+39 011 555 0101", agent, caller_name="Francesca Romano")
        expect(page.locator("#caller-company")).to_have_text("Studio Romano")
        demo.sim.hangup(call, by="remote")
        expect(page.locator("#history li")).to_have_count(1)
        call = demo.sim.incoming_call("+39 011 555 0101", agent, caller_name="Francesca Romano")
        expect(page.locator("#call-state")).to_have_text("ringing")

        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        level = sum(int(v) for v in re.findall(r"\d+", background)[:3]) / 3
        assert (level < 60) if scheme == "dark" else (level > 200), background
        ratios = [r for selector in TEXTS for r in page.evaluate(CONTRAST, selector)]
        assert len(ratios) > len(TEXTS)
        low = [r for r in ratios if r["ratio"] < 4.5]
        assert not low, low

        # Every field has a label (its accessible name), in both schemes.
        unlabelled = page.evaluate(
            "[...document.querySelectorAll('input')]"
            ".filter((i) => !i.labels.length).map((i) => i.id)"
        )
        assert unlabelled == []
        demo.sim.hangup(call, by="remote")
        expect(page.locator("#call-state")).to_have_text("ended")
    finally:
        page.context.close()
    assert not errors, errors
