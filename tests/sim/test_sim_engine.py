"""The step API: each event carries the document's number/ext meanings and the right fields."""

from __future__ import annotations

import pytest

from callbridge.sim import CallEngine, MemorySink, SimError, default_directory, md5_hex
from callbridge.voispeed import (
    CallEvent,
    DeviceLogin,
    DeviceLogout,
    DeviceType,
    Direction,
    parse_event,
)


@pytest.fixture
def engine(sink: MemorySink) -> CallEngine:
    return CallEngine(sink=sink)


def events(sink: MemorySink) -> list[CallEvent]:
    parsed = [parse_event(e) for e in sink.events]
    assert all(isinstance(e, CallEvent) for e in parsed)
    return parsed  # type: ignore[return-value]


def test_inbound_answered_fields(engine: CallEngine, sink: MemorySink) -> None:
    call = engine.incoming_call("+39 06 1234 5678", "201", caller_name="Anna|Neri|Neri Spa")
    engine.answer(call)
    engine.hangup(call, by="remote")
    ring, answered, hangup = events(sink)
    assert (ring.ssn_event, answered.ssn_event, hangup.ssn_event) == (16, 18, 20)
    for event in (ring, answered, hangup):
        assert event.call_id == call.legs[0].user_call_id
        assert len(event.call_id) == 8
        assert event.sender_id == "00000065"
        assert event.company_id == "1"
        assert event.ext_id is None
        assert event.identity is not None
        assert (event.identity.name, event.identity.surname) == ("Anna", "Neri")
        assert event.identity.department == "Neri Spa"
        assert (event.identity.p1, event.identity.p2) == ("0", "0")
        assert event.remote_number_for(Direction.INCOMING) == "+39 06 1234 5678"
        assert event.local_number_for(Direction.INCOMING) == "201"
    # 18 on an incoming call: number = callee (the user), ext = caller
    assert (answered.number, answered.ext) == ("201", "+39 06 1234 5678")


def test_outbound_to_external_answered_then_local_hangup(
    engine: CallEngine, sink: MemorySink
) -> None:
    call = engine.outgoing_call("202", "+390612345678", ext_id="cb-42", callee_name="Ugo Bassi")
    engine.answer(call)
    engine.hangup(call)  # by the user
    out, answered, hangup = events(sink)
    assert [e.ssn_event for e in (out, answered, hangup)] == [17, 18, 21]
    assert all(e.ext_id == "cb-42" for e in (out, answered, hangup))
    assert (out.number, out.ext) == ("+390612345678", "202")
    assert (answered.number, answered.ext) == ("+390612345678", "202")
    assert (hangup.number, hangup.ext) == ("+390612345678", "202")
    assert out.identity is not None
    assert out.identity.display_name == "Ugo Bassi"


def test_outbound_rejected_by_remote(engine: CallEngine, sink: MemorySink) -> None:
    call = engine.outgoing_call("202", "0612345678")
    engine.hangup(call, by="remote")
    assert [e.ssn_event for e in events(sink)] == [17, 19]
    assert events(sink)[1].remote_number_for(Direction.OUTGOING) == "0612345678"


def test_internal_call_both_sides(engine: CallEngine, sink: MemorySink) -> None:
    call = engine.internal_call("201", "203")
    engine.answer(call)
    engine.hangup(call, by="local", extension="203")
    got = [(e.ssn_event, e.sender_id, e.number, e.ext) for e in events(sink)]
    assert got == [
        (17, "00000065", "203", "201"),  # Mario calls Luca
        (16, "00000067", "201", "203"),  # Luca is rung by Mario
        (18, "00000067", "203", "201"),  # Luca answers: number = callee, ext = caller
        (18, "00000065", "203", "201"),
        (21, "00000067", "201", "203"),  # Luca hangs up
        (20, "00000065", "203", "201"),  # Mario hears it: number = the sender
    ]
    luca_identity = events(sink)[0].identity
    assert luca_identity is not None
    assert luca_identity.display_name == "Luca Verdi"
    assert luca_identity.department == "Support"


def test_group_call_rings_every_member_with_the_group(engine: CallEngine, sink: MemorySink) -> None:
    call = engine.ring_group("+390612345678", "Support")
    assert {e.group for e in events(sink)} == {"Support"}
    assert [e.local_number for e in events(sink)] == ["203", "204"]
    with pytest.raises(SimError, match="several legs"):
        engine.answer(call)
    engine.answer(call, "204")
    engine.hangup(call, by="local")
    got = [(e.ssn_event, e.local_number_for(Direction.INCOMING)) for e in events(sink)]
    assert got == [(16, "203"), (16, "204"), (20, "203"), (18, "204"), (21, "204")]


def test_missed_internal_call(engine: CallEngine, sink: MemorySink) -> None:
    call = engine.internal_call("201", "202")
    engine.hangup(call)  # Mario gives up
    got = [(e.ssn_event, e.number, e.ext) for e in events(sink)]
    assert got == [(17, "202", "201"), (16, "201", "202"), (21, "202", "201"), (20, "201", "202")]


def test_device_login_and_logout(engine: CallEngine, sink: MemorySink) -> None:
    engine.device_login("000012A0")
    engine.device_logout("12a0")
    login, logout = (parse_event(e) for e in sink.events)
    assert isinstance(login, DeviceLogin)
    assert isinstance(logout, DeviceLogout)
    assert login.device_id == "000012A0"
    assert login.device_type is DeviceType.SIP_PHONE
    assert (login.device_ip, login.device_port) == ("10.0.0.21", 5060)
    assert login.device_name
    assert "Yealink" in login.device_name
    assert login.number == "201"
    assert login.user_id == "00000065"
    assert login.company_id == "1"


def test_refusals_change_nothing(engine: CallEngine, sink: MemorySink) -> None:
    with pytest.raises(SimError, match="unknown extension"):
        engine.incoming_call("+390612345678", "999")
    with pytest.raises(SimError, match="external id"):
        engine.outgoing_call("201", "06123", ext_id="has space")
    with pytest.raises(SimError, match="own extension"):
        engine.outgoing_call("201", "201")
    with pytest.raises(SimError, match="unknown device"):
        engine.device_login("0000FFFF")
    assert sink.events == []
    assert engine.calls == []
    call = engine.incoming_call("+390612345678", "201")
    engine.reject(call)
    with pytest.raises(SimError, match="already ended"):
        engine.hangup(call)


def test_token_and_hash_stay_out_of_reprs() -> None:
    directory = default_directory()
    digest = md5_hex("callbridge")
    assert digest not in repr(directory)
    assert all(u.check_password(digest.upper()) for u in directory.users)
    assert not directory.users[0].check_password(md5_hex("wrong"))
