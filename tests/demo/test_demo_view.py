"""The terminal views render what the demo feeds them."""

from __future__ import annotations

import io

from rich.console import Console

from callbridge.demo import ActivityWritten, CallUpdate, Note, ScenarioChecked, ScenarioStarted
from callbridge.demo.runner import Summary
from callbridge.demo.view import LineView, LiveView, describe, render_summary

KEY = "1:000A0001"


def _console() -> Console:
    return Console(file=io.StringIO(), width=140, record=True, color_system=None)


def _feed() -> list[object]:
    ring = CallUpdate(KEY, "201", "ringing", "inbound", "+390612345678", "Mario Rossi", "Rossi Srl")
    return [
        ScenarioStarted("inbound-answered", "An external caller rings Mario (201)."),
        ring,
        CallUpdate(
            KEY, "201", "ended", "inbound", "+390612345678", "Mario Rossi", outcome="answered"
        ),
        CallUpdate("1:000A0002", "203", "ringing", "inbound", "+390287654321", ambiguous=2),
        ActivityWritten(
            "directory", "7", KEY, "201", "inbound", "answered", "+390612345678", "Mario Rossi"
        ),
        ScenarioChecked("inbound-answered"),
        Note("202 clicks +390287654321"),
    ]


def test_live_view_shows_calls_contacts_states_and_activities() -> None:
    console = _console()
    view = LiveView(console, "http://127.0.0.1:1/agent#extension=201&token=t")
    for event in _feed():
        view(event)  # type: ignore[arg-type]
    console.print(view.render())
    text = console.export_text()
    # The box shows the token-free address; the full link is printed above the live region.
    assert "http://127.0.0.1:1/agent (the link to open" in text
    assert "token=t" not in text
    assert "Mario Rossi" in text and "answered" in text and "#7" in text
    assert "2 contacts share this number" in text
    assert "1/1 as expected" in text
    assert "202 clicks" in text


def test_line_view_prints_one_line_per_fact() -> None:
    console = _console()
    view = LineView(console)
    for event in _feed():
        view(event)  # type: ignore[arg-type]
    lines = console.export_text().splitlines()
    assert len(lines) == 7
    assert "pop       201 inbound +390612345678 Mario Rossi: ended (answered)" in lines[2]
    assert "activity  directory #7: 201 inbound answered +390612345678 on Mario Rossi" in lines[4]
    failed = describe(ScenarioChecked("transfer", ("202: expected 1 activity",)))
    assert "FAILED: 202: expected 1 activity" in failed


def test_summary_counts() -> None:
    console = _console()
    checks = (ScenarioChecked("a"), ScenarioChecked("b", ("missing",)))
    console.print(render_summary(Summary(3, 9, {"directory": 3}, pending=1, dead=0, checks=checks)))
    text = console.export_text()
    for expected in ("calls seen", "pops sent", "activities (directory)", "pending", "1/2"):
        assert expected in text
