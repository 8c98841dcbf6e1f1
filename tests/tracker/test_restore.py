"""Restarts: open calls come back from the journal, finished calls never finish again."""

from __future__ import annotations

import pytest
from tracker_support import CALLER, T0, at, finished, inbound, kinds, make_tracker, run

from callbridge.models import CallState, Outcome

GROUP = "sales"


def test_open_call_resumes_after_a_restart() -> None:
    events = inbound("A1", CALLER, "201", identity="Mario|Rossi||0|0")
    before = make_tracker()
    run(before, [(0, events[16]), (5, events[18])])
    saved = before.open_calls()
    assert [c.state for c in saved] == [CallState.ANSWERED]

    after = make_tracker()
    after.restore(saved)
    assert after.open_calls() == saved
    # Replays of events applied before the restart are recognised as repeats.
    assert run(after, [(6, events[16]), (6, events[18])]) == []
    changes = run(after, [(65, events[21])])
    assert kinds(changes) == [("ended", "A1"), ("finished", "A1")]
    call = changes[-1].call
    assert call.outcome is Outcome.ANSWERED
    assert call.identity is not None
    assert call.identity.display_name == "Mario Rossi"


def test_restored_finished_call_never_finishes_again() -> None:
    events = inbound("A1", CALLER, "201")
    before = make_tracker()
    done = finished(run(before, [(0, events[16]), (9, events[20])]))["A1"].call
    # Listing it again in the same tracker changes nothing.
    before.restore([done])
    assert run(before, [(10, events[21])]) == []

    after = make_tracker()
    after.restore([done])
    assert after.open_calls() == []
    assert after.get(done.key) == done
    assert run(after, [(10, events[21]), (11, events[18]), (99999, None)]) == []


def test_held_group_leg_is_settled_after_a_restart() -> None:
    a = inbound("1A1", CALLER, "201", group=GROUP)
    b = inbound("1A2", CALLER, "202", group=GROUP)
    before = make_tracker(group_window=10)
    run(before, [(0, a[16]), (0, b[16]), (20, a[20]), (20, b[20])])
    saved = before.open_calls()
    assert [(c.state, c.outcome) for c in saved] == [(CallState.ENDED, None)] * 2

    after = make_tracker(group_window=10)
    after.restore(reversed(saved))
    changes = after.tick(at(31))
    assert sorted(kinds(changes)) == [("dropped", "1A2"), ("finished", "1A1")]
    assert finished(changes)["1A1"].call.outcome is Outcome.MISSED


def test_restored_answer_still_drops_a_restored_held_leg() -> None:
    a = inbound("1A1", CALLER, "201", group=GROUP)
    b = inbound("1A2", CALLER, "202", group=GROUP)
    before = make_tracker(group_window=10)
    run(before, [(0, a[16]), (0, b[16]), (3, a[20])])
    held = before.open_calls()
    after = make_tracker(group_window=10)
    after.restore(held)
    changes = run(after, [(3.5, b[18]), (30, b[21])])
    assert sorted(kinds(changes)) == [
        ("answered", "1A2"),
        ("dropped", "1A1"),
        ("ended", "1A2"),
        ("finished", "1A2"),
    ]


def test_restored_silent_call_expires() -> None:
    events = inbound("A1", CALLER, "201")
    before = make_tracker(call_expiry=60)
    run(before, [(0, events[16])])
    after = make_tracker(call_expiry=60)
    after.restore(before.open_calls())
    assert after.tick(at(59)) == []
    changes = after.tick(at(61))
    assert kinds(changes) == [("ended", "A1"), ("finished", "A1")]
    assert changes[-1].call.outcome is Outcome.UNKNOWN


def test_malformed_restore_is_refused_and_changes_nothing() -> None:
    events = inbound("A1", CALLER, "201")
    before = make_tracker()
    run(before, [(0, events[16])])
    good = before.open_calls()[0]
    bad = good.model_copy(update={"key": "other:000000A1"})
    after = make_tracker()
    with pytest.raises(ValueError, match="does not match"):
        after.restore([good, bad])
    assert after.open_calls() == []
    no_times = good.model_copy(update={"ring_at": None})
    with pytest.raises(ValueError, match="no ring, answer or end time"):
        after.restore([no_times])
    naive = good.model_copy(update={"ring_at": T0.replace(tzinfo=None)})
    with pytest.raises(ValueError, match="timezone-aware"):
        after.restore([naive])
    assert after.open_calls() == []


def test_restored_end_without_outcome_outside_a_group_is_finished_on_tick() -> None:
    events = inbound("A1", CALLER, "201")
    before = make_tracker()
    ended = [c for c in run(before, [(0, events[16]), (9, events[20])]) if c.kind == "ended"]
    pending = ended[0].call.model_copy(update={"outcome": None})
    after = make_tracker()
    after.restore([pending])
    changes = after.tick(at(9))
    assert kinds(changes) == [("finished", "A1")]
    assert changes[0].call.outcome is Outcome.MISSED
    assert after.tick(at(99999)) == []
