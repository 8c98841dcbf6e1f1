"""Property tests: whatever the PBX does to the events, no call is logged twice or inconsistent.

A plan draws a few calls (inbound/outbound/internal, answered/missed/rejected) and a ring group
call, then the event stream is damaged: events lost, repeated, shuffled, received at arbitrary
(even decreasing) times, with ticks and a restart (restore) anywhere. After a final tick far
in the future every call must be resolved exactly once, and every finished call consistent.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tracker_support import CALLER, OTHER, T0, at, inbound, make_tracker, outbound

from callbridge.engine.tracker import GROUP_RING_CAP, Change, Tracker, duration_s, ring_s
from callbridge.models import Call, CallState, Outcome
from callbridge.voispeed.events import CallEvent

EXPIRY = 600.0
WINDOW = 10.0
REUSE = 4 * 3600.0
KINDS = ["answered", "missed", "rejected", "local_missed"]


def _call_events(index: int, kind: str, outgoing: bool, number: str) -> list[CallEvent]:
    call_id = f"{index + 1:X}"
    ext = f"2{index:02d}"
    events = outbound(call_id, number, ext) if outgoing else inbound(call_id, number, ext)
    start = events[17 if outgoing else 16]
    if kind == "answered":
        return [start, events[18], events[21 if index % 2 else 20]]
    if kind == "rejected":
        return [start, events[19]]
    return [start, events[21 if kind == "local_missed" else 20]]


@st.composite
def plans(draw: st.DrawFn) -> list[CallEvent]:
    """The undamaged events of a few calls and, sometimes, of a group call."""
    events: list[CallEvent] = []
    for index in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(KINDS))
        outgoing = draw(st.booleans())
        number = draw(st.sampled_from([CALLER, OTHER, "202"]))
        events += _call_events(index, kind, outgoing, number)
    members = draw(st.integers(0, 3))
    answerer = draw(st.integers(-1, members - 1)) if members else -1
    for member in range(members):
        legs = inbound(f"A{member}", CALLER, f"3{member:02d}", group="sales")
        # The PBX may end the members that did not answer with 19 as well as 20/21.
        end = legs[draw(st.sampled_from([19, 20, 21])) if member != answerer else 21]
        events += [legs[16], legs[18], end] if member == answerer else [legs[16], end]
    return events


def _check_consistent(call: Call) -> None:
    assert call.state is CallState.ENDED
    assert call.end_at is not None
    assert call.outcome is not None
    assert duration_s(call) >= 0
    assert ring_s(call) >= 0
    if call.ring_at is not None:
        assert call.ring_at <= call.end_at
        if call.answer_at is not None:
            assert call.ring_at <= call.answer_at
    if call.outcome is Outcome.ANSWERED:
        assert call.answer_at is not None
        assert call.answer_at <= call.end_at
    if call.outcome in (Outcome.MISSED, Outcome.REJECTED):
        assert call.answer_at is None
        assert duration_s(call) == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans(), data=st.data())
def test_any_damage_gives_at_most_one_consistent_record_per_call(
    plan: list[CallEvent], data: st.DataObject
) -> None:
    copies = data.draw(st.lists(st.integers(0, 2), min_size=len(plan), max_size=len(plan)))
    stream = [event for event, n in zip(plan, copies, strict=True) for _ in range(n)]
    stream = data.draw(st.permutations(stream))
    monotone = data.draw(st.booleans())
    offsets = data.draw(st.lists(st.floats(0, 60), min_size=len(stream), max_size=len(stream)))
    ticks = data.draw(st.sets(st.integers(0, max(len(stream), 1))))
    restart_at = data.draw(st.none() | st.integers(0, max(len(stream), 1)))
    policy = data.draw(st.sampled_from(["one", "each"]))

    def fresh() -> Tracker:
        # The damage here is to one life of each call id (events up to ~40 minutes apart),
        # so reuse_after is beyond it: a ring that late after an end would be a reused id,
        # a new call (test_reuse.py holds that property).
        return make_tracker(
            call_expiry=EXPIRY, group_window=WINDOW, group_missed=policy, reuse_after=REUSE
        )

    tracker = fresh()
    changes: list[Change] = []
    now = 0.0
    for position, event in enumerate(stream):
        now = now + offsets[position] if monotone else offsets[position] * 10
        if position in ticks:
            changes += tracker.tick(at(now))
        if position == restart_at:
            # The dispatcher restores open calls, and the ones it saw finish (as tombstones).
            resolved = [c.call for c in changes if c.kind in ("finished", "dropped")]
            saved = tracker.open_calls()
            tracker = fresh()
            tracker.restore([*saved, *resolved])
        changes += tracker.apply(event, at(now))
    end = at(now) + timedelta(seconds=EXPIRY + WINDOW + 1) + GROUP_RING_CAP
    changes += tracker.tick(end)
    changes += tracker.tick(end + timedelta(seconds=EXPIRY))

    resolved_count = Counter(c.call.key for c in changes if c.kind in ("finished", "dropped"))
    assert all(n == 1 for n in resolved_count.values()), resolved_count
    seen_keys = {f"-:{event.call_id}" for event in stream}
    assert set(resolved_count) == seen_keys
    assert tracker.open_calls() == []
    for change in changes:
        if change.kind in ("finished", "dropped"):
            _check_consistent(change.call)
        if change.kind == "ended":
            assert change.call.end_at is not None


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    outgoing=st.booleans(),
    repeats=st.lists(st.integers(1, 3), min_size=3, max_size=3),
    gaps=st.lists(st.floats(0, 30), min_size=9, max_size=9),
)
def test_repeats_in_order_change_nothing(
    kind: str, outgoing: bool, repeats: list[int], gaps: list[float]
) -> None:
    events = _call_events(0, kind, outgoing, CALLER)
    clean = make_tracker()
    expected: list[Change] = []
    for i, event in enumerate(events):
        expected += clean.apply(event, T0 + timedelta(seconds=100 * i))
    noisy = make_tracker()
    got: list[Change] = []
    gap = iter(gaps)
    for i, (event, n) in enumerate(zip(events, repeats, strict=False)):
        got += noisy.apply(event, T0 + timedelta(seconds=100 * i))
        for _ in range(n - 1):
            got += noisy.apply(event, T0 + timedelta(seconds=100 * i + next(gap)))
    assert got == expected
    (record,) = [c.call for c in got if c.kind == "finished"]
    assert (
        record.outcome
        is {
            "answered": Outcome.ANSWERED,
            "missed": Outcome.MISSED,
            "local_missed": Outcome.MISSED,
            "rejected": Outcome.REJECTED,
        }[kind]
    )


@settings(max_examples=300, deadline=None)
@given(
    members=st.integers(1, 4),
    answerer=st.integers(-1, 3),
    data=st.data(),
)
def test_group_call_gives_exactly_one_record_whatever_the_order(
    members: int, answerer: int, data: st.DataObject
) -> None:
    # Every event arrives (some twice), in any order, within the group slack of each other.
    events: list[CallEvent] = []
    for member in range(members):
        legs = inbound(f"B{member}", CALLER, f"4{member:02d}", group="support")
        end = legs[21 if member == answerer else data.draw(st.sampled_from([19, 20, 21]))]
        events += [legs[16], legs[18], end] if member == answerer else [legs[16], end]
    copies = data.draw(st.lists(st.integers(1, 2), min_size=len(events), max_size=len(events)))
    stream = data.draw(
        st.permutations([e for e, n in zip(events, copies, strict=True) for _ in range(n)])
    )
    times = sorted(
        data.draw(st.lists(st.floats(0, 2.5), min_size=len(stream), max_size=len(stream)))
    )
    tracker = make_tracker(group_window=WINDOW)
    changes: list[Change] = []
    for event, seconds in zip(stream, times, strict=True):
        changes += tracker.apply(event, at(seconds))
    changes += tracker.tick(at(2.5 + WINDOW))
    done = [c.call for c in changes if c.kind == "finished"]
    dropped = [c.call for c in changes if c.kind == "dropped"]
    assert len(done) == 1
    assert len(done) + len(dropped) == members
    if 0 <= answerer < members:
        assert done[0].outcome is Outcome.ANSWERED
        assert done[0].extension == f"4{answerer:02d}"
    else:
        assert done[0].outcome is Outcome.MISSED


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.floats(0, 30), min_size=1, max_size=4),
    rings=st.lists(st.floats(1, 30), min_size=5, max_size=5),
    ends=st.lists(st.sampled_from([19, 20, 21]), min_size=5, max_size=5),
    answered=st.booleans(),
)
def test_hunt_group_with_gaps_gives_one_record(
    gaps: list[float], rings: list[float], ends: list[int], answered: bool
) -> None:
    """Members rung one after the other, up to 30 s apart: one activity, with the defaults.

    Answered by the last member: only its call is logged, no false missed call for the ones
    rung before. Nobody answered: one missed call for the group call.
    """
    tracker = make_tracker()
    members = len(gaps) + 1
    changes: list[Change] = []
    now = 0.0
    for member in range(members):
        legs = inbound(f"C{member}", CALLER, f"5{member:02d}", group="hunt")
        changes += tracker.apply(legs[16], at(now))
        now += rings[member]
        if member == members - 1 and answered:
            changes += tracker.apply(legs[18], at(now))
            changes += tracker.apply(legs[21], at(now + 60))
        else:
            changes += tracker.apply(legs[ends[member]], at(now))
            changes += tracker.tick(at(now))
        if member < members - 1:
            now += gaps[member]
            changes += tracker.tick(at(now))
    changes += tracker.tick(at(now + 3600))
    done = [c.call for c in changes if c.kind == "finished"]
    dropped = [c.call for c in changes if c.kind == "dropped"]
    assert len(done) == 1
    assert len(done) + len(dropped) == members
    if answered:
        assert done[0].outcome is Outcome.ANSWERED
        assert done[0].extension == f"5{members - 1:02d}"
    else:
        assert done[0].outcome is Outcome.MISSED
        assert done[0].extension == "500"
