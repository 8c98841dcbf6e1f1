"""A 19 that a source could only infer from the monitor tables is a missed call, not a rejection.

The MySQL path sees a user call close without ever being active; it cannot tell the user
rejecting it from the caller giving up or the ring timing out, so it sends 19 marked with
``UNANSWERED_CLOSE``. A 19 from the PBX itself still means what the document says: rejected.
"""

from __future__ import annotations

from tracker_support import CALLER, at, finished, inbound, kinds, make_tracker, outbound

from callbridge.models import HungUpBy, Outcome
from callbridge.voispeed.events import UNANSWERED_CLOSE, CallEvent, CallRejected, parse_event


def _inferred(event: CallEvent) -> CallRejected:
    marked = parse_event({**event.params, UNANSWERED_CLOSE: "1"})
    assert isinstance(marked, CallRejected)
    assert not marked.rejection_known
    return marked


def test_an_inferred_19_on_an_incoming_call_is_missed() -> None:
    tracker = make_tracker()
    call = inbound("A1", CALLER, "201")
    changes = tracker.apply(call[16], at(0)) + tracker.apply(_inferred(call[19]), at(20))
    done = finished(changes)["A1"].call
    assert done.outcome is Outcome.MISSED
    assert done.hung_up_by is HungUpBy.UNKNOWN


def test_an_inferred_19_on_an_outgoing_call_is_not_answered_not_rejected() -> None:
    tracker = make_tracker()
    call = outbound("B1", CALLER, "201")
    changes = tracker.apply(call[17], at(0)) + tracker.apply(_inferred(call[19]), at(30))
    done = finished(changes)["B1"].call
    assert done.outcome is Outcome.MISSED
    assert done.hung_up_by is HungUpBy.UNKNOWN


def test_a_pbx_19_is_still_a_rejection() -> None:
    tracker = make_tracker()
    call = inbound("C1", CALLER, "201")
    assert isinstance(call[19], CallRejected) and call[19].rejection_known
    changes = tracker.apply(call[16], at(0)) + tracker.apply(call[19], at(5))
    done = finished(changes)["C1"].call
    assert done.outcome is Outcome.REJECTED
    assert done.hung_up_by is HungUpBy.LOCAL


def test_inferred_19s_of_a_ring_group_give_one_missed_activity() -> None:
    """Every member's leg closes unanswered: one missed call for the group, not one each."""
    tracker = make_tracker(group_window=10, group_missed="one")
    legs = [inbound(i, CALLER, ext, group="sales") for i, ext in (("D1", "201"), ("D2", "202"))]
    changes = []
    for leg in legs:
        changes += tracker.apply(leg[16], at(0))
    for leg in legs:
        changes += tracker.apply(_inferred(leg[19]), at(25))
    changes += tracker.tick(at(60))
    assert sorted(k for k in kinds(changes) if k[0] in ("finished", "dropped")) == [
        ("dropped", "D2"),
        ("finished", "D1"),
    ]
    assert finished(changes)["D1"].call.outcome is Outcome.MISSED
