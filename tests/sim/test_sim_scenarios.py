"""Every built-in scenario gives the document's event sequence, with the right meanings."""

from __future__ import annotations

import threading

import pytest

from callbridge.sim import MemorySink, Simulator
from callbridge.sim.scenarios import (
    Expectation,
    PlayResult,
    Scenario,
    ScenarioError,
    builtin_scenarios,
    find_scenario,
    parse_scenario,
    play,
)
from callbridge.voispeed import CallEvent, parse_event
from callbridge.voispeed.soap import SoapClient

BUILTINS = builtin_scenarios()


def test_the_builtins_are_there() -> None:
    assert {s.name for s in BUILTINS} == {
        "inbound-answered",
        "inbound-missed",
        "inbound-rejected",
        "group-answered",
        "click-to-call-answered",
        "click-to-call-not-answered",
        "transfer",
        "hold-retrieve",
        "click-to-call-no-ext-id",
        "hunt-group-answered",
    }
    for scenario in BUILTINS:
        assert scenario.expect, scenario.name
        assert scenario.events, scenario.name


def _legs(result: PlayResult, events: list[dict[str, str]]) -> dict[str, list[CallEvent]]:
    """user call id -> its parsed events."""
    legs: dict[str, list[CallEvent]] = {}
    for raw in result.events_of(events):
        event = parse_event(raw)
        assert isinstance(event, CallEvent)
        legs.setdefault(event.call_id, []).append(event)
    return legs


def _matches(sim: Simulator, expect: Expectation, leg: list[CallEvent], result: PlayResult) -> bool:
    first = leg[0]
    if first.local_number != expect.extension:
        return False
    internal = sim.directory.user_by_extension(first.remote_number) is not None
    direction = "internal" if internal else "inbound" if first.ssn_event == 16 else "outbound"
    codes = [e.ssn_event for e in leg]
    outcome = "answered" if 18 in codes else "rejected" if 19 in codes else "missed"
    if expect.count == 0:
        return outcome == "answered"
    if expect.direction and expect.direction != direction:
        return False
    if expect.outcome and expect.outcome != outcome:
        return False
    if expect.remote_number and expect.remote_number != first.remote_number:
        return False
    if expect.external_id_of and result.scenario.ext_id == "none":
        assert all(e.ext_id is None for e in leg), "this PBX must not echo the external id"
    elif expect.external_id_of:
        wanted = result.external_ids[expect.external_id_of]
        assert all(e.ext_id == wanted for e in leg), "external id not echoed on every event"
    return True


@pytest.mark.parametrize("scenario", BUILTINS, ids=[s.name for s in BUILTINS])
def test_builtin_scenario(scenario: Scenario, sim: Simulator, sink: MemorySink) -> None:
    result = play(sim, scenario, realtime=False)
    sim.flush()
    assert result.check_events(sink.events) == []
    legs = _legs(result, sink.events)
    for leg in legs.values():
        # every leg starts with 16/17 and ends with exactly one of 19/20/21
        assert leg[0].ssn_event in (16, 17)
        assert leg[-1].ssn_event in (19, 20, 21)
        assert sum(e.ssn_event in (19, 20, 21) for e in leg) == 1
    for expect in scenario.expect:
        found = sum(_matches(sim, expect, leg, result) for leg in legs.values())
        assert found == expect.count, f"{scenario.name}: {expect}"


def test_click_to_call_echoes_the_external_id(sim: Simulator, sink: MemorySink) -> None:
    result = play(sim, find_scenario("click-to-call-answered"), realtime=False)
    ext_id = result.external_ids["c1"]
    assert ext_id.startswith("cb-")
    events = [parse_event(e) for e in result.events_of(sink.events)]
    assert [(e.ssn_event, getattr(e, "ext_id", None)) for e in events] == [
        (17, ext_id),
        (18, ext_id),
        (21, ext_id),
    ]
    # it went over real HTTP, through the SOAP endpoint
    commands = [(e.command, e.fields.get("call_req_ext_id")) for e in sim.soap_log]
    assert commands == [("CallReq", ext_id), ("CallDisconnect", None)]


def test_scenario_in_real_time(sim: Simulator, sink: MemorySink) -> None:
    scenario = find_scenario("inbound-answered")
    result = play(sim, scenario, realtime=True, speed=100)
    assert result.check_events(sink.events) == []


def test_await_call_req_binds_a_call_placed_from_outside(sim: Simulator, sink: MemorySink) -> None:
    scenario = parse_scenario(
        """
        name = "external-click"
        [[step]]
        action = "await_call_req"
        call = "c1"
        timeout = 30
        [[step]]
        action = "answer"
        call = "c1"
        [[step]]
        action = "hangup"
        call = "c1"
        by = "remote"
        [events]
        "204" = [17, 18, 20]
        """
    )
    outcome: list[PlayResult] = []
    thread = threading.Thread(target=lambda: outcome.append(play(sim, scenario, realtime=False)))
    thread.start()
    with SoapClient(sim.pbx_settings()) as client:
        sent = client.call_req("auth-sara@acme", "0612345678", external_id="cb-from-crm")
    thread.join(timeout=30)
    assert outcome, "the scenario did not finish"
    assert outcome[0].external_ids["c1"] == sent.external_id == "cb-from-crm"
    assert outcome[0].check_events(sink.events) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name = ", "not valid TOML"),
        ('name = "x"', "at least one [[step]]"),
        ('[[step]]\naction = "incoming"', "needs a name"),
        ('name = "x"\n[[step]]\naction = "fly"', "unknown action 'fly'"),
        ('name = "x"\n[[step]]\naction = "incoming"\ncall = "c"\nto = "201"', "needs ['from']"),
        ('name = "x"\n[[step]]\naction = "answer"\ncall = "nope"', "unknown call 'nope'"),
        (
            'name = "x"\n[[step]]\naction = "internal"\ncall = "c"\nfrom = "201"\nto = "202"\n'
            "colour = 1",
            "does not take ['colour']",
        ),
        (
            'name = "x"\n[[step]]\naction = "internal"\ncall = "c"\nfrom = "201"\nto = "202"\n'
            "wait = -1",
            "wait must be",
        ),
        (
            'name = "x"\n[[step]]\naction = "internal"\ncall = "c"\nfrom = "201"\nto = "202"\n'
            '[[expect]]\nextension = "201"\nexternal_id_of = "zz"',
            "unknown call 'zz'",
        ),
    ],
)
def test_bad_scenarios_are_explained(text: str, problem: str) -> None:
    with pytest.raises(ScenarioError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario(text, "bad.toml")


def test_a_failing_step_names_the_scenario_and_step(sim: Simulator) -> None:
    scenario = parse_scenario(
        'name = "oops"\n[[step]]\naction = "incoming"\ncall = "c"\nfrom = "1"\nto = "777"'
    )
    with pytest.raises(ScenarioError, match=r"oops: step 1 \(incoming\): unknown extension 777"):
        play(sim, scenario, realtime=False)


def test_unknown_scenario_lists_the_builtins() -> None:
    with pytest.raises(ScenarioError, match="inbound-answered"):
        find_scenario("no-such-scenario")
