"""Bad input, concurrency, and memory that does not grow forever."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from tracker_support import CALLER, T0, at, ev, inbound, kinds, make_tracker, outbound, run

from callbridge.engine.tracker import KEEP_RESOLVED, MIN_TOMBSTONE_RETENTION, Change
from callbridge.settings import TrackerSettings
from callbridge.voispeed.events import parse_event


def test_naive_time_is_refused_and_changes_nothing() -> None:
    tracker = make_tracker()
    with pytest.raises(ValueError, match="timezone-aware"):
        tracker.apply(ev(16, "A1", CALLER, "201"), T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="timezone-aware"):
        tracker.tick(T0.replace(tzinfo=None))
    assert tracker.open_calls() == []


def test_non_call_event_is_refused() -> None:
    tracker = make_tracker()
    login = parse_event({"ssn_event": "1", "device_id": "12A0", "number": "201"})
    with pytest.raises(TypeError, match="call events"):
        tracker.apply(login, T0)  # type: ignore[arg-type]
    assert tracker.open_calls() == []


def test_exception_from_originates_changes_nothing() -> None:
    def broken(external_id: str) -> None:
        raise RuntimeError("journal unavailable")

    tracker = make_tracker(broken)
    with pytest.raises(RuntimeError):
        tracker.apply(ev(17, "A1", CALLER, "201", ext_id="cb-x"), T0)
    assert tracker.open_calls() == []


def test_duplicate_changes_no_field() -> None:
    events = inbound("A1", CALLER, "201")
    tracker = make_tracker()
    run(tracker, [(0, events[16]), (5, events[18])])
    before = tracker.open_calls()
    assert run(tracker, [(50, events[16]), (60, events[18])]) == []
    assert tracker.open_calls() == before


def test_worker_threads_apply_different_calls_concurrently() -> None:
    tracker = make_tracker()
    results: list[Change] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            local: list[Change] = []
            for i in range(150):
                call_id = f"{n:02X}{i:04X}"
                events = inbound(call_id, CALLER, f"2{n:02d}")
                for offset, code in ((0, 16), (1, 18), (2, 21)):
                    local += tracker.apply(events[code], at(i + offset))
            with lock:
                results.extend(local)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    counts = Counter(kind for kind, _ in kinds(results))
    assert counts == {"ringing": 1200, "answered": 1200, "ended": 1200, "finished": 1200}
    assert tracker.open_calls() == []


def test_finished_calls_are_forgotten_but_their_keys_remembered() -> None:
    events = outbound("A1", CALLER, "201")
    tracker = make_tracker(call_expiry=60)
    run(tracker, [(0, events[17]), (10, events[21])])
    key = "-:000000A1"
    assert tracker.get(key) is not None
    keep = KEEP_RESOLVED.total_seconds()
    tracker.tick(at(10 + keep))
    assert tracker.get(key) is None
    # A late event for the forgotten call does not bring it back.
    assert tracker.apply(events[20], at(20 + keep)) == []
    assert tracker.open_calls() == []
    # Long after, the PBX may reuse the id: it is a new call then.
    later = 10 + keep + MIN_TOMBSTONE_RETENTION.total_seconds()
    tracker.tick(at(later))
    assert kinds(tracker.apply(events[17], at(later + 1))) == [("ringing", "A1")]


def test_finished_calls_in_memory_are_bounded_by_count() -> None:
    """A sustained load does not keep an hour of finished calls: the oldest go early."""
    tracker = make_tracker(call_expiry=60, max_finished=10, max_forgotten=20)
    for n in range(100):
        events = outbound(f"{n + 1:X}", CALLER, "201")
        run(tracker, [(n, events[17]), (n + 0.5, events[21])])
    tracker.tick(at(101))  # seconds later, far from the hour of KEEP_RESOLVED
    finished = [k for k in (f"-:{n + 1:08X}" for n in range(100)) if tracker.get(k) is not None]
    assert finished == [f"-:{n + 1:08X}" for n in range(90, 100)]
    assert len(tracker._tombstones) <= 20
    # A late event for a call forgotten early but still remembered by key does nothing.
    assert tracker.apply(outbound("55", CALLER, "201")[20], at(102)) == []
    assert tracker.open_calls() == []


def test_deadlines_of_finished_calls_do_not_pile_up() -> None:
    """Each call's expiry deadline is hours away; finished calls' ones are dropped early."""
    tracker = make_tracker(max_finished=10)
    for n in range(3000):
        events = outbound(f"{n + 1:X}", CALLER, "201")
        run(tracker, [(n, events[17]), (n + 0.5, events[21])])
        if n % 50 == 0:
            tracker.tick(at(n + 1))
    tracker.tick(at(3001))
    assert len(tracker._deadlines) <= 2 * 10 + 1024 + 50
    # Open calls keep theirs: one rings now and expires on time.
    ring = outbound("FFFF", CALLER, "202")[17]
    tracker.apply(ring, at(3002))
    expiry = TrackerSettings().call_expiry
    expired = tracker.tick(at(3002 + expiry + 1))
    assert [c.kind for c in expired if c.call.user_call_id == "0000FFFF"] == ["ended", "finished"]
