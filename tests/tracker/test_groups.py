"""Group calls: one user call per member; log the answerer, or one missed call per group call."""

from __future__ import annotations

from collections.abc import Sequence

from tracker_support import (
    CALLER,
    OTHER,
    Step,
    at,
    finished,
    inbound,
    kinds,
    make_tracker,
    outbound,
    run,
)

from callbridge.engine.tracker import GROUP_RING_CAP, Change
from callbridge.models import Outcome

GROUP = "sales"
A = inbound("1A1", CALLER, "201", group=GROUP)
B = inbound("1A2", CALLER, "202", group=GROUP)
C = inbound("1A3", CALLER, "203", group=GROUP)
RINGS: list[Step] = [(0, A[16]), (0.1, B[16]), (0.2, C[16])]


def resolutions(changes: Sequence[Change]) -> dict[str, str]:
    """user call id -> finished/dropped, asserting each is resolved at most once."""
    result: dict[str, str] = {}
    for kind, call_id in kinds(changes):
        if kind in ("finished", "dropped"):
            assert call_id not in result, f"{call_id} resolved twice"
            result[call_id] = kind
    return result


def test_answered_by_one_member_logs_only_the_answerer() -> None:
    tracker = make_tracker()
    changes = run(
        tracker,
        [*RINGS, (5, B[18]), (5.2, A[20]), (5.3, C[20]), (65, B[21]), (100, None)],
    )
    assert resolutions(changes) == {"1A1": "dropped", "1A2": "finished", "1A3": "dropped"}
    # The others are dropped as soon as they end: the answer is already known.
    assert kinds(changes)[4:6] == [("ended", "1A1"), ("dropped", "1A1")]
    assert finished(changes)["1A2"].call.outcome is Outcome.ANSWERED
    assert tracker.open_calls() == []


def test_member_ends_before_the_answer_arrives_then_is_dropped() -> None:
    tracker = make_tracker()
    changes = run(tracker, [*RINGS, (5.0, A[20]), (5.0, C[20]), (5.1, B[18])])
    assert kinds(changes)[3:] == [
        ("ended", "1A1"),
        ("ended", "1A3"),
        ("answered", "1A2"),
        ("dropped", "1A1"),
        ("dropped", "1A3"),
    ]
    # Held legs tell the dispatcher "ended" without an outcome: the decision is pending.
    assert changes[3].call.outcome is None


def test_answer_received_late_within_the_window_still_drops() -> None:
    tracker = make_tracker(group_window=10)
    changes = run(tracker, [*RINGS, (5, A[20]), (5, C[20]), (9, None), (12, B[18])])
    assert resolutions(changes) == {"1A1": "dropped", "1A3": "dropped"}


def test_nobody_answered_logs_one_missed_call_for_the_first_leg_that_rang() -> None:
    tracker = make_tracker(group_window=10)
    changes = run(
        tracker,
        [*RINGS, (30, B[20]), (30.1, A[20]), (30.2, C[20]), (39, None), (40.2, None)],
    )
    assert resolutions(changes) == {"1A1": "finished", "1A2": "dropped", "1A3": "dropped"}
    missed = finished(changes)["1A1"].call
    assert missed.outcome is Outcome.MISSED
    assert missed.extension == "201"
    # Nothing was decided before the window closed.
    assert not resolutions(run(make_tracker(), [*RINGS, (30, A[20]), (30, B[20]), (39, None)]))


def test_policy_each_logs_every_members_missed_leg() -> None:
    tracker = make_tracker(group_window=10, group_missed="each")
    changes = run(tracker, [*RINGS, (30, A[20]), (30, B[20]), (30, C[20]), (41, None)])
    assert resolutions(changes) == {"1A1": "finished", "1A2": "finished", "1A3": "finished"}
    # ... but still not when someone answered.
    tracker = make_tracker(group_window=10, group_missed="each")
    changes = run(tracker, [*RINGS, (5, B[18]), (5, A[20]), (5, C[20]), (41, None)])
    assert resolutions(changes) == {"1A1": "dropped", "1A3": "dropped"}


def test_zero_window_decides_at_the_last_end() -> None:
    tracker = make_tracker(group_window=0)
    changes = run(tracker, [*RINGS, (30, A[20]), (30, B[20])])
    assert resolutions(changes) == {}  # C still rings
    changes = run(tracker, [(30, C[21])])
    assert resolutions(changes) == {"1A1": "finished", "1A2": "dropped", "1A3": "dropped"}


def test_hunt_group_waits_for_the_member_still_ringing() -> None:
    # A rings alone and gives up; B rings next and answers after A's window would have ended.
    tracker = make_tracker(group_window=10)
    changes = run(tracker, [(0, A[16]), (15, A[20]), (15.5, B[16]), (26, None), (30, B[18])])
    assert resolutions(changes) == {"1A1": "dropped"}


def test_caller_ringing_again_later_is_a_new_group_call() -> None:
    again_a = inbound("2A1", CALLER, "201", group=GROUP)
    again_b = inbound("2A2", CALLER, "202", group=GROUP)
    tracker = make_tracker(group_window=10)
    changes = run(
        tracker,
        [
            (0, A[16]),
            (0, B[16]),
            (20, A[20]),
            (20, B[20]),
            (35, None),  # first group call: one missed call logged
            (120, again_a[16]),
            (120, again_b[16]),
            (125, again_b[18]),
            (125.5, again_a[20]),
            (200, again_b[21]),
        ],
    )
    assert resolutions(changes) == {
        "1A1": "finished",
        "1A2": "dropped",
        "2A1": "dropped",
        "2A2": "finished",
    }


def test_two_callers_on_one_group_are_separate() -> None:
    other = inbound("1B1", OTHER, "201", group=GROUP)
    tracker = make_tracker(group_window=10)
    changes = run(
        tracker,
        [(0, A[16]), (0, B[16]), (1, other[16]), (4, B[18]), (4, A[20]), (20, other[20])],
    )
    changes += tracker.tick(at(31))
    assert resolutions(changes) == {"1A1": "dropped", "1B1": "finished"}


def test_outgoing_legs_of_members_are_not_held() -> None:
    out = outbound("3A1", CALLER, "204", group=GROUP)
    tracker = make_tracker(group_window=10)
    changes = run(tracker, [(0, A[16]), (3, out[17]), (4, out[21])])
    assert resolutions(changes) == {"3A1": "finished"}


def test_other_legs_ended_with_19_after_an_answer_give_one_activity() -> None:
    """The PBX ends the members that did not answer with 19: not one "rejected" each."""
    tracker = make_tracker()
    changes = run(tracker, [*RINGS, (5, B[18]), (5.1, A[19]), (5.1, C[19]), (60, B[20])])
    changes += tracker.tick(at(200))
    assert resolutions(changes) == {"1A1": "dropped", "1A2": "finished", "1A3": "dropped"}
    assert finished(changes)["1A2"].call.outcome is Outcome.ANSWERED


def test_19s_received_before_the_answer_are_held_then_dropped() -> None:
    tracker = make_tracker(group_window=10)
    changes = run(tracker, [*RINGS, (5, A[19]), (5, C[19]), (5.2, B[18]), (60, B[21])])
    assert resolutions(changes) == {"1A1": "dropped", "1A2": "finished", "1A3": "dropped"}


def test_nobody_answered_and_every_leg_ended_with_19_is_one_missed_call() -> None:
    tracker = make_tracker(group_window=10)
    changes = run(tracker, [*RINGS, (30, A[19]), (30, B[19]), (30, C[19]), (41, None)])
    assert resolutions(changes) == {"1A1": "finished", "1A2": "dropped", "1A3": "dropped"}
    assert finished(changes)["1A1"].call.outcome is Outcome.MISSED


def test_hunt_group_gap_between_members_is_no_missed_call() -> None:
    """Members rung one after the other, 5-30 s apart: the default window covers the gap."""
    d = inbound("1A4", CALLER, "204", group=GROUP)
    tracker = make_tracker()  # default window
    changes = run(
        tracker,
        [
            (0, A[16]),
            (20, A[19]),
            (25, B[16]),  # 5 s later
            (45, B[20]),
            (75, C[16]),  # 30 s later
            (95, C[19]),
            (120, d[16]),  # 25 s later, answered
            (125, d[18]),
            (200, d[21]),
        ],
    )
    changes += tracker.tick(at(1000))
    assert resolutions(changes) == {
        "1A1": "dropped",
        "1A2": "dropped",
        "1A3": "dropped",
        "1A4": "finished",
    }


def test_hunt_group_window_is_a_setting() -> None:
    """With a short window, a 20 s gap between members is two group calls (one missed)."""
    tracker = make_tracker(group_window=5)
    changes = run(tracker, [(0, A[16]), (20, A[20]), (40, B[16]), (45, B[18]), (90, B[21])])
    changes += tracker.tick(at(1000))
    assert resolutions(changes) == {"1A1": "finished", "1A2": "finished"}


def test_own_answer_arriving_during_the_hold_logs_it_answered() -> None:
    tracker = make_tracker(group_window=10)
    changes = run(tracker, [(0, A[16]), (0, B[16]), (20, A[21]), (21, A[18]), (22, B[20])])
    assert resolutions(changes) == {"1A1": "finished", "1A2": "dropped"}
    call = finished(changes)["1A1"].call
    assert call.outcome is Outcome.ANSWERED
    assert call.answer_at is not None
    assert call.end_at is not None
    assert call.answer_at <= call.end_at


def test_member_whose_end_is_lost_holds_the_others_only_up_to_the_cap() -> None:
    tracker = make_tracker(group_window=10, call_expiry=3600)
    changes = run(tracker, [*RINGS, (30, A[20]), (30, B[20]), (45, None)])
    assert resolutions(changes) == {}
    cap = GROUP_RING_CAP.total_seconds()
    changes = run(tracker, [(cap + 1, None)])
    assert resolutions(changes) == {"1A1": "finished", "1A2": "dropped"}
    changes = run(tracker, [(3600.3, None)])  # C expires: its group call is already logged
    assert resolutions(changes) == {"1A3": "dropped"}
    assert tracker.open_calls() == []


def test_withheld_numbers_are_never_grouped() -> None:
    # Two anonymous callers at once: answering one must not hide the other's missed call.
    first = inbound("5A1", "anonymous", "201", group=GROUP)
    second = inbound("5A2", "anonymous", "202", group=GROUP)
    tracker = make_tracker(group_window=10)
    changes = run(tracker, [(0, first[16]), (0, second[16]), (3, second[18]), (4, first[20])])
    assert resolutions(changes) == {"5A1": "finished"}
    assert finished(changes)["5A1"].call.outcome is Outcome.MISSED
