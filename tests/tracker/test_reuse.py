"""Reused user call ids: a later call with the same id is a call of its own (a generation).

VOIspeed's user call ids come from counters that restart (the PBX's; the monitor tables'
AUTO_INCREMENT after a MySQL restart), so the same company and id can name a second call
hours later, even with the same numbers and identity. A ring for an ended call that has been
silent for ``reuse_after`` starts a new call keyed ``<company>:<id>:<ring time>``; repeats and
late events sooner than that still belong to the call they came with.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tracker_support import CALLER, T0, at, inbound, make_tracker, outbound

from callbridge.engine.tracker import (
    KEEP_RESOLVED,
    Change,
    Tracker,
    call_key,
    generation_key,
)
from callbridge.engine.tracker_leg import split_key, user_call_id_of
from callbridge.models import Call, Outcome
from callbridge.settings import TrackerSettings
from callbridge.voispeed.events import CallEvent

HOUR = 3600.0
BASE = call_key("7", "00000005")


def _events(**kw: object) -> dict[int, CallEvent]:
    return inbound("00000005", CALLER, "201", company="7", **kw)  # type: ignore[arg-type]


def _done(changes: list[Change]) -> list[Call]:
    return [c.call for c in changes if c.kind == "finished"]


def _answered_call(tracker: Tracker, start: float) -> list[Change]:
    ev = _events()
    changes = tracker.apply(ev[16], at(start))
    changes += tracker.apply(ev[18], at(start + 5))
    changes += tracker.apply(ev[21], at(start + 65))
    return changes


def test_keys_name_the_base_and_the_generation() -> None:
    key = generation_key(BASE, at(HOUR))
    assert key == "7:00000005:20240506T100000.000000Z"
    assert split_key(key) == (BASE, "20240506T100000.000000Z")
    assert split_key(BASE) == (BASE, None)
    assert user_call_id_of(key) == user_call_id_of(BASE) == "00000005"


def test_a_reused_id_hours_later_is_a_second_independent_call() -> None:
    tracker = make_tracker()
    first = _done(_answered_call(tracker, 0))
    ev = _events()
    second = tracker.apply(ev[16], at(2 * HOUR))
    assert [c.kind for c in second] == ["ringing"]
    new_key = generation_key(BASE, at(2 * HOUR))
    assert second[0].call.key == new_key
    assert tracker.key_for("7", "00000005") == new_key
    second += tracker.apply(ev[20], at(2 * HOUR + 30))
    (a,) = first
    (b,) = _done(second)
    assert (a.key, b.key) == (BASE, new_key)
    assert a.user_call_id == b.user_call_id == "00000005"
    assert (a.outcome, b.outcome) == (Outcome.ANSWERED, Outcome.MISSED)
    assert b.ring_at == at(2 * HOUR) and b.answer_at is None
    # The first call is untouched by the second's events.
    assert tracker.get(BASE) == a


def test_a_repeat_of_the_ring_within_seconds_is_no_new_call() -> None:
    tracker = make_tracker()
    changes = _answered_call(tracker, 0)
    ev = _events()
    # A PBX re-send of the ring after the end, and a late repeat within reuse_after.
    for seconds in (70, 65 + 299):
        assert tracker.apply(ev[16], at(seconds)) == []
    assert tracker.key_for("7", "00000005") == BASE
    changes += tracker.tick(at(10 * HOUR))
    assert [c.call.key for c in changes if c.kind == "finished"] == [BASE]


def test_a_ring_for_a_call_still_open_is_a_repeat_however_late() -> None:
    # Answered, then a long conversation with no events: the call has not ended.
    tracker = make_tracker()
    ev = _events()
    tracker.apply(ev[16], at(0))
    tracker.apply(ev[18], at(5))
    assert tracker.apply(ev[16], at(HOUR)) == []
    changes = tracker.apply(ev[21], at(HOUR + 10))
    assert [(c.kind, c.call.key) for c in changes] == [("ended", BASE), ("finished", BASE)]


def test_events_after_the_new_ring_belong_to_the_newest_call() -> None:
    tracker = make_tracker(reuse_after=60)
    _answered_call(tracker, 0)
    ev = _events()
    tracker.apply(ev[16], at(HOUR))
    key = generation_key(BASE, at(HOUR))
    answered = tracker.apply(ev[18], at(HOUR + 3))
    assert [(c.kind, c.call.key) for c in answered] == [("answered", key)]
    ended = tracker.apply(ev[21], at(HOUR + 50))
    assert [(c.kind, c.call.key) for c in ended] == [("ended", key), ("finished", key)]
    # A third life, of an outgoing call this time.
    out = outbound("00000005", "0298765432", "201", company="7")
    third = tracker.apply(out[17], at(3 * HOUR))
    assert third[0].call.key == generation_key(BASE, at(3 * HOUR)) != key


def test_reuse_after_the_first_call_was_forgotten() -> None:
    tracker = make_tracker()
    _answered_call(tracker, 0)
    tracker.tick(at(65) + KEEP_RESOLVED + timedelta(minutes=1))  # only a tombstone is left
    assert tracker.get(BASE) is None
    changes = _answered_call(tracker, 2 * HOUR)
    assert [c.key for c in _done(changes)] == [generation_key(BASE, at(2 * HOUR))]


def test_reuse_after_restart_with_the_journal_holding_the_settled_call() -> None:
    """A restart forgets settled calls; the journal's copy tells the reused id apart."""
    saved: dict[str, Call] = {}
    before = make_tracker()
    for change in _answered_call(before, 0):
        saved[change.call.key] = change.call
    after = Tracker(TrackerSettings(), region="IT", originates=lambda _: None, calls=saved.get)
    ev = _events()
    # The first call's end, handled again after the crash: absorbed, no second activity.
    assert after.apply(ev[21], at(65)) == []
    changes = _answered_call(after, 2 * HOUR)
    assert [c.key for c in _done(changes)] == [generation_key(BASE, at(2 * HOUR))]


def test_the_key_is_stable_when_events_are_handled_again_after_a_crash() -> None:
    saved: dict[str, Call] = {}

    def tracker() -> Tracker:
        return Tracker(TrackerSettings(), region="IT", originates=lambda _: None, calls=saved.get)

    first = tracker()
    for change in _answered_call(first, 0):
        saved[change.call.key] = change.call
    ev = _events()
    ringing = first.apply(ev[16], at(2 * HOUR))
    key = ringing[0].call.key
    saved[key] = ringing[0].call
    # Crash before the end; the restart restores the open call, then handles the ring again.
    second = tracker()
    second.restore([c for c in saved.values() if c.end_at is None])
    assert second.key_for("7", "00000005") == key
    assert second.apply(ev[16], at(2 * HOUR)) == []
    changes = second.apply(ev[20], at(2 * HOUR + 20))
    assert [(c.kind, c.call.key) for c in changes] == [("ended", key), ("finished", key)]
    saved[key] = changes[-1].call
    # Crash again, this time with nothing open: the whole second call is handled again.
    third = tracker()
    assert third.apply(ev[16], at(2 * HOUR)) == []
    assert third.apply(ev[20], at(2 * HOUR + 20)) == []
    assert third.key_for("7", "00000005") == key


def test_restore_takes_generation_keys_and_refuses_foreign_ones() -> None:
    tracker = make_tracker()
    changes = _answered_call(tracker, 0) + _answered_call(tracker, 2 * HOUR)
    calls = _done(changes)
    fresh = make_tracker()
    fresh.restore(calls)
    assert fresh.key_for("7", "00000005") == calls[1].key
    wrong = calls[1].model_copy(update={"key": "7:00000006:20240506T110000.000000Z"})
    with pytest.raises(ValueError, match="does not match"):
        make_tracker().restore([wrong])


def test_reuse_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="reuse_after"):
        TrackerSettings(reuse_after=0)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), lives=st.integers(1, 3), kind=st.sampled_from(["answered", "missed"]))
def test_each_life_of_a_reused_id_gives_exactly_one_record(
    data: st.DataObject, lives: int, kind: str
) -> None:
    """Each life's events repeated and shuffled within a minute; lives hours apart."""
    tracker = make_tracker(call_expiry=600, reuse_after=300)
    ev = _events()
    changes: list[Change] = []
    expected: list[str] = []
    for life in range(lives):
        start = life * 3 * HOUR
        plan = [ev[16], ev[18], ev[20]] if kind == "answered" else [ev[16], ev[21]]
        copies = data.draw(st.lists(st.integers(1, 2), min_size=len(plan), max_size=len(plan)))
        stream = [e for e, n in zip(plan, copies, strict=True) for _ in range(n)]
        # The first event to arrive is the ring (a reused id is recognised by its ring).
        rest = data.draw(st.permutations(stream[1:]))
        offsets = sorted(data.draw(st.lists(st.floats(0, 60), min_size=len(rest))))
        changes += tracker.apply(stream[0], at(start))
        for event, offset in zip(rest, offsets, strict=False):
            changes += tracker.apply(event, at(start + 1 + offset))
        expected.append(BASE if life == 0 else generation_key(BASE, at(start)))
    changes += tracker.tick(at(lives * 3 * HOUR + 2 * HOUR))
    resolved = Counter(c.call.key for c in changes if c.kind in ("finished", "dropped"))
    assert resolved == Counter(expected)
    for call in _done(changes):
        # Shuffled, an answer may come after the hang-up (then the call counts as missed).
        assert call.outcome in (Outcome.ANSWERED, Outcome.MISSED)
        assert call.end_at is not None and call.ring_at == at(split_start(call.key))


def split_start(key: str) -> float:
    """Seconds after T0 at which the life with this key rang."""
    stamp = split_key(key)[1]
    return 0.0 if stamp is None else (int(stamp[9:11]) - T0.hour) * HOUR
