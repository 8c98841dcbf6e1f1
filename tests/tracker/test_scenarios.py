"""Table-driven scenarios: one call (or a few) from events to changes and final fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from tracker_support import (
    CALLER,
    CALLER_E164,
    ORIGINATE,
    OTHER,
    T0,
    Step,
    ev,
    finished,
    inbound,
    kinds,
    make_tracker,
    outbound,
    run,
)

from callbridge.engine.tracker import duration_s, ring_s
from callbridge.models import Direction, HungUpBy, Outcome

IN = inbound("A1", CALLER, "201", identity="Mario|Rossi|ACME|0|0")
OUT = outbound("B1", CALLER, "201", identity="Anna|Bianchi||0|0")
CLICK = outbound("C1", "0298765432", "201", ext_id=ORIGINATE.external_id)
INTERNAL = inbound("D1", "202", "201")


@dataclass
class Scenario:
    """Events in, expected changes out, and what the one finished call must look like."""

    steps: list[Step]
    changes: list[tuple[str, str]]
    expect: dict[str, Any] = field(default_factory=dict)
    duration: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)


SCENARIOS: dict[str, Scenario] = {
    "inbound answered": Scenario(
        steps=[(0, IN[16]), (5, IN[18]), (65, IN[21])],
        changes=[("ringing", "A1"), ("answered", "A1"), ("ended", "A1"), ("finished", "A1")],
        expect={
            "direction": Direction.INBOUND,
            "outcome": Outcome.ANSWERED,
            "hung_up_by": HungUpBy.LOCAL,
            "remote_number": CALLER,
            "remote_e164": CALLER_E164,
            "extension": "201",
            "user_id": "1",
            "identity.display_name": "Mario Rossi",
        },
        duration=60,
    ),
    "inbound missed": Scenario(
        steps=[(0, IN[16]), (20, IN[20])],
        changes=[("ringing", "A1"), ("ended", "A1"), ("finished", "A1")],
        expect={"outcome": Outcome.MISSED, "hung_up_by": HungUpBy.REMOTE, "answer_at": None},
        duration=0,
    ),
    "inbound rejected": Scenario(
        steps=[(0, IN[16]), (3, IN[19])],
        changes=[("ringing", "A1"), ("ended", "A1"), ("finished", "A1")],
        expect={"outcome": Outcome.REJECTED, "hung_up_by": HungUpBy.LOCAL},
        duration=0,
    ),
    "outbound answered": Scenario(
        steps=[(0, OUT[17]), (8, OUT[18]), (128, OUT[20])],
        changes=[("ringing", "B1"), ("answered", "B1"), ("ended", "B1"), ("finished", "B1")],
        expect={
            "direction": Direction.OUTBOUND,
            "outcome": Outcome.ANSWERED,
            "hung_up_by": HungUpBy.REMOTE,
            "remote_e164": CALLER_E164,
            "extension": "201",
            "identity.display_name": "Anna Bianchi",
        },
        duration=120,
    ),
    "outbound not answered": Scenario(
        steps=[(0, OUT[17]), (30, OUT[21])],
        changes=[("ringing", "B1"), ("ended", "B1"), ("finished", "B1")],
        expect={"direction": Direction.OUTBOUND, "outcome": Outcome.MISSED},
        duration=0,
    ),
    "outbound rejected by the callee": Scenario(
        steps=[(0, OUT[17]), (4, OUT[19])],
        changes=[("ringing", "B1"), ("ended", "B1"), ("finished", "B1")],
        expect={"outcome": Outcome.REJECTED, "hung_up_by": HungUpBy.REMOTE},
    ),
    "click-to-call links its originate": Scenario(
        steps=[(0, CLICK[17]), (6, CLICK[18]), (36, CLICK[21])],
        changes=[("ringing", "C1"), ("answered", "C1"), ("ended", "C1"), ("finished", "C1")],
        expect={
            "external_id": "cb-abc",
            "originate": ORIGINATE,
            "crm_context.record_id": "C42",
            "direction": Direction.OUTBOUND,
        },
        duration=30,
    ),
    "internal call": Scenario(
        steps=[(0, INTERNAL[16]), (2, INTERNAL[18]), (12, INTERNAL[20])],
        changes=[("ringing", "D1"), ("answered", "D1"), ("ended", "D1"), ("finished", "D1")],
        expect={"direction": Direction.INTERNAL, "remote_number": "202", "remote_e164": None},
        duration=10,
    ),
    "answer before ring": Scenario(
        steps=[(0, IN[18]), (1, IN[16]), (40, IN[21])],
        changes=[("answered", "A1"), ("ended", "A1"), ("finished", "A1")],
        expect={
            "direction": Direction.INBOUND,
            "outcome": Outcome.ANSWERED,
            "remote_e164": CALLER_E164,
            "extension": "201",
            "ring_at": "<=answer_at",
        },
        duration=40,
    ),
    "outbound answer before ring is read the right way round": Scenario(
        steps=[(0, OUT[18]), (1, OUT[17]), (11, OUT[20])],
        changes=[("answered", "B1"), ("ended", "B1"), ("finished", "B1")],
        expect={"direction": Direction.OUTBOUND, "remote_e164": CALLER_E164, "extension": "201"},
    ),
    "end with no start": Scenario(
        steps=[(0, IN[20])],
        changes=[("ended", "A1"), ("finished", "A1")],
        expect={
            "outcome": Outcome.MISSED,
            "direction": Direction.INBOUND,
            "remote_e164": CALLER_E164,
            "ring_at": None,
        },
        duration=0,
    ),
    "events after the end fill fields, never finish twice": Scenario(
        steps=[(0, IN[20]), (1, IN[16]), (2, IN[21]), (3, IN[18])],
        changes=[("ended", "A1"), ("finished", "A1")],
        expect={"outcome": Outcome.MISSED},
    ),
    "duplicates change nothing": Scenario(
        steps=[(0, IN[16]), (0.1, IN[16]), (5, IN[18]), (5.1, IN[18]), (65, IN[21]), (66, IN[21])],
        changes=[("ringing", "A1"), ("answered", "A1"), ("ended", "A1"), ("finished", "A1")],
        expect={"answer_at": "T+5", "end_at": "T+65"},
        duration=60,
    ),
    "two ends: the first one counts": Scenario(
        steps=[(0, IN[16]), (5, IN[18]), (30, IN[20]), (31, IN[21])],
        changes=[("ringing", "A1"), ("answered", "A1"), ("ended", "A1"), ("finished", "A1")],
        expect={"hung_up_by": HungUpBy.REMOTE},
        duration=25,
    ),
    "lost end expires with outcome unknown": Scenario(
        steps=[(0, IN[16]), (50, None), (100, None)],
        settings={"call_expiry": 60},
        changes=[("ringing", "A1"), ("ended", "A1"), ("finished", "A1")],
        expect={"outcome": Outcome.UNKNOWN, "hung_up_by": HungUpBy.UNKNOWN, "end_at": "T+0"},
        duration=0,
    ),
    "lost end after an answer expires answered": Scenario(
        steps=[(0, IN[16]), (5, IN[18]), (64, None), (65, None)],
        settings={"call_expiry": 60},
        changes=[("ringing", "A1"), ("answered", "A1"), ("ended", "A1"), ("finished", "A1")],
        expect={"outcome": Outcome.ANSWERED, "hung_up_by": HungUpBy.UNKNOWN, "end_at": "T+5"},
        duration=0,
    ),
    "answer arriving with a clock behind the ring is clamped": Scenario(
        steps=[(10, IN[16]), (5, IN[18]), (3, IN[20])],
        changes=[("ringing", "A1"), ("answered", "A1"), ("ended", "A1"), ("finished", "A1")],
        expect={"answer_at": "T+10", "end_at": "T+10"},
        duration=0,
    ),
}


def _value(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    scenario = SCENARIOS[name]
    tracker = make_tracker(**scenario.settings)
    changes = run(tracker, scenario.steps)
    assert kinds(changes) == scenario.changes
    done = finished(changes)
    assert len(done) == 1
    call = next(iter(done.values())).call
    assert tracker.get(call.key) is not None
    for path, expected in scenario.expect.items():
        value = _value(call, path)
        if expected == "<=answer_at":
            assert value is not None
            assert call.answer_at is not None
            assert value <= call.answer_at
        elif isinstance(expected, str) and expected.startswith("T+"):
            assert value is not None
            assert (value - T0).total_seconds() == float(expected[2:]), path
        else:
            assert value == expected, path
    if scenario.duration is not None:
        assert duration_s(call) == scenario.duration
    assert call.state == "ended"
    assert call.end_at is not None
    assert ring_s(call) >= 0
    assert tracker.open_calls() == []


def test_call_key_and_company_separate_calls() -> None:
    tracker = make_tracker()
    a = tracker.apply(ev(16, "A1", CALLER, "201", company="acme"), T0)
    b = tracker.apply(ev(16, "A1", CALLER, "201", company="beta"), T0)
    c = tracker.apply(ev(16, "A1", CALLER, "201"), T0)
    assert [x[0].call.key for x in (a, b, c)] == ["acme:000000A1", "beta:000000A1", "-:000000A1"]
    assert len(tracker.open_calls()) == 3


def test_several_calls_on_one_extension_are_independent() -> None:
    first = inbound("E1", CALLER, "201")
    second = inbound("E2", OTHER, "201")
    third = outbound("E3", "0298765432", "201")
    tracker = make_tracker()
    changes = run(
        tracker,
        [
            (0, first[16]),
            (2, first[18]),
            (10, second[16]),  # call waiting
            (15, third[17]),  # consultation call
            (18, second[20]),  # the waiting caller gives up
            (20, third[18]),
            (40, third[21]),
            (90, first[21]),
        ],
    )
    done = finished(changes)
    assert set(done) == {"E1", "E2", "E3"}
    assert done["E1"].call.outcome is Outcome.ANSWERED
    assert duration_s(done["E1"].call) == 88
    assert done["E2"].call.outcome is Outcome.MISSED
    assert done["E2"].call.remote_number == OTHER
    assert done["E3"].call.direction is Direction.OUTBOUND
    assert duration_s(done["E3"].call) == 20
    assert tracker.open_calls() == []


def test_late_start_corrects_a_guess_made_from_the_answer() -> None:
    # An 18 alone with two external numbers cannot say which side is ours; the 17 settles it.
    events = outbound("F1", CALLER, "0298765432")
    tracker = make_tracker()
    tracker.apply(events[18], T0)
    guessed = tracker.open_calls()[0]
    assert guessed.direction is Direction.INBOUND  # the documented default
    tracker.apply(events[17], T0)
    fixed = tracker.open_calls()[0]
    assert fixed.direction is Direction.OUTBOUND
    assert fixed.remote_number == CALLER
    assert fixed.extension == "0298765432"


def test_originate_is_looked_up_on_any_event_until_found() -> None:
    calls: list[str] = []
    found: dict[str, Any] = {}

    def originates(external_id: str) -> Any:
        calls.append(external_id)
        return found.get(external_id)

    events = outbound("C2", "0298765432", "201", ext_id="cb-abc")
    tracker = make_tracker(originates)
    tracker.apply(events[17], T0)
    assert tracker.open_calls()[0].originate is None
    found["cb-abc"] = ORIGINATE
    tracker.apply(events[18], T0)
    assert tracker.open_calls()[0].originate == ORIGINATE
    changes = tracker.apply(events[21], T0)
    assert changes[-1].call.crm_context == ORIGINATE.crm
    assert calls == ["cb-abc", "cb-abc"]  # not asked again once found


def test_internal_click_to_call_binds_the_callers_leg_only() -> None:
    """201 clicks 202; the callee's 16 echoes the same ext_id: only 201's leg is the click's,
    so exactly one finished call carries the clicked record."""
    internal = ORIGINATE.model_copy(update={"number": "202"})
    tracker = make_tracker({internal.external_id: internal}.get)
    caller = outbound("D1", "202", "201", ext_id="cb-abc")
    callee = inbound("D2", "201", "202", ext_id="cb-abc")
    changes = run(
        tracker,
        [
            (0, callee[16]),  # the callee's ring may arrive first
            (0.1, caller[17]),
            (2, caller[18]),
            (2, callee[18]),
            (9, caller[21]),
            (9, callee[20]),
        ],
    )
    done = finished(changes)
    assert set(done) == {"D1", "D2"}
    assert done["D1"].call.crm_context == internal.crm
    assert done["D2"].call.originate is None
    assert done["D2"].call.crm_context is None


def test_click_to_call_is_not_taken_by_another_extensions_leg() -> None:
    tracker = make_tracker()
    other = outbound("D3", "0298765432", "203", ext_id="cb-abc")
    changes = run(tracker, [(0, other[17]), (5, other[21])])
    assert finished(changes)["D3"].call.originate is None
