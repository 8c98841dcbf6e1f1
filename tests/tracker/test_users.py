"""Event 16's ``ext`` is the number called: for a group or a DID it is not the member's extension.

The member is the event's user (``sender_id``); the tracker maps it to an extension from the
MySQL ``users`` table (``user_extension``, filled in by the MySQL source), the
``tracker.user_extensions`` setting, or what login events (1, 2) taught it. The number the
caller dialled is kept on the call as ``dialled_number``.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tracker_support import CALLER, at, ev, finished, make_tracker, run

from callbridge.engine.tracker_users import UserMap
from callbridge.models import Outcome
from callbridge.voispeed.events import DeviceLogin, parse_event


def _login(user_id: str, number: str, device: str = "12A0") -> DeviceLogin:
    event = parse_event(
        {"ssn_event": "1", "device_id": device, "user_id": user_id, "number": number}
    )
    assert isinstance(event, DeviceLogin)
    return event


def test_group_number_in_ext_is_the_dialled_number_not_the_extension() -> None:
    tracker = make_tracker(user_extensions=["7=201"])
    changes = run(
        tracker,
        [
            (0, ev(16, "1", CALLER, "600", sender="7", group="600")),
            (5, ev(18, "1", "600", CALLER, sender="7", group="600")),
            (60, ev(20, "1", CALLER, "600", sender="7", group="600")),
        ],
    )
    ringing = changes[0].call
    assert ringing.extension == "201"
    assert ringing.user_id == "7"
    assert ringing.dialled_number == "600"
    record = finished(changes)["1"].call
    assert (record.extension, record.dialled_number) == ("201", "600")
    assert record.outcome is Outcome.ANSWERED


def test_did_in_ext_without_a_known_user_keeps_the_document_reading() -> None:
    """Nothing maps the user: the extension is the document's ``ext``, as before."""
    tracker = make_tracker()
    changes = run(tracker, [(0, ev(16, "2", CALLER, "0212345678", sender="9"))])
    assert changes[0].call.extension == "0212345678"
    assert changes[0].call.dialled_number == "0212345678"


def test_login_events_teach_the_map() -> None:
    tracker = make_tracker()
    tracker.learn_device(_login("00000008", "202"))
    changes = run(tracker, [(0, ev(16, "3", CALLER, "0212345678", sender="8"))])
    assert changes[0].call.extension == "202"
    assert changes[0].call.dialled_number == "0212345678"


def test_the_users_table_comes_first_then_the_setting_then_logins() -> None:
    tracker = make_tracker(user_extensions=["7=201"])
    tracker.learn_device(_login("7", "299"))
    event = parse_event(
        {
            "ssn_event": "16",
            "call_id": "4",
            "number": CALLER,
            "ext": "600",
            "sender_id": "7",
            "user_extension": "203",
        }
    )
    (ringing,) = tracker.apply(event, at(0))  # type: ignore[arg-type]
    assert ringing.call.extension == "203"
    (ringing,) = tracker.apply(ev(16, "5", CALLER, "600", sender="7"), at(1))
    assert ringing.call.extension == "201"


def test_user_map_ids_ignore_leading_zeros_and_case() -> None:
    users = UserMap(["0000000a=201", " 12 = 202 "])
    assert users.extension("A") == "201"
    assert users.extension("0000000A") == "201"
    assert users.extension("00000012") == "202"
    assert users.extension("13") is None
    assert users.extension(None) is None
    users.learn(_login("13", "203"))
    assert users.extension("0013") == "203"


@settings(max_examples=100, deadline=None)
@given(
    order=st.permutations([16, 18, 20]),
    copies=st.lists(st.integers(1, 2), min_size=3, max_size=3),
)
def test_the_member_is_the_mapped_user_whatever_the_order(
    order: list[int], copies: list[int]
) -> None:
    """Reordered and repeated events: the call is the member's, the dialled number kept."""
    events = {
        16: ev(16, "6", CALLER, "600", sender="7", group="600"),
        18: ev(18, "6", "600", CALLER, sender="7", group="600"),
        20: ev(20, "6", CALLER, "600", sender="7", group="600"),
    }
    tracker = make_tracker(user_extensions=["7=201"])
    stream = [(i, events[code]) for i, code in enumerate(order) for _ in range(copies[i])]
    changes = run(tracker, [(float(t), e) for t, e in stream])
    changes += tracker.tick(at(3600))
    # Never the group's number as the extension (the pop would go to stream "600") ...
    assert {c.call.extension for c in changes} == {"201"}
    # ... and once every event is in, the call knows the dialled number too.
    call = tracker.get("-:00000006")
    assert call is not None
    assert (call.extension, call.dialled_number) == ("201", "600")
