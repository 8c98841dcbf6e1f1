"""Every SOAP command over real HTTP, sent by callbridge's own SoapClient."""

from __future__ import annotations

from callbridge.sim import LegState, MemorySink, Simulator
from callbridge.voispeed import (
    CallableType,
    CallEvent,
    CrudAction,
    CrudEntityType,
    GatewayType,
    parse_event,
)
from callbridge.voispeed.soap import SoapClient

MARIO = "auth-mario@acme"
GIULIA = "auth-giulia@acme"


def call_event(raw: dict[str, str]) -> CallEvent:
    event = parse_event(raw)
    assert isinstance(event, CallEvent)
    return event


def codes(sink: MemorySink) -> list[int]:
    return [int(e["ssn_event"]) for e in sink.events]


def test_call_req_starts_an_outgoing_call_with_the_external_id(
    sim: Simulator, client: SoapClient, sink: MemorySink
) -> None:
    result = client.call_req(MARIO, "+39 06 1234 5678", device_id="000012A0", external_id="cb-x1")
    assert result.values["result"] == "0"
    assert result.user_call_id is not None
    assert result.values["external_id"] == "cb-x1"
    leg = sim.leg(result.user_call_id)
    assert leg.user.extension == "201"
    assert leg.device_id == "000012A0"
    assert leg.state is LegState.RINGING
    event = call_event(sink.events[-1])
    assert event.ssn_event == 17
    assert event.call_id == result.user_call_id
    assert event.ext_id == "cb-x1"
    assert event.remote_number == "+390612345678"
    assert event.local_number == "201"
    entry = sim.soap_log[-1]
    assert entry.command == "CallReq"
    assert entry.fields["call_req_ext_id"] == "cb-x1"
    assert entry.username == "auth-callbridge@acme"
    assert entry.ok


def test_call_req_ext_by_user_ids(sim: Simulator, client: SoapClient, sink: MemorySink) -> None:
    result = client.call_req_ext(
        MARIO,
        calling_id="00000065",
        called_id="00000066",
        calling_type=CallableType.USER,
        called_type=CallableType.USER,
        external_id="cb-ext2",
        record=True,
    )
    leg = sim.leg(result.values["user_call_id"])
    assert leg.recording is True
    assert leg.remote.number == "202"
    # 17 for Mario, 16 for Giulia (an internal callee rings)
    assert codes(sink) == [17, 16]
    assert sink.events[0]["ext_id"] == "cb-ext2"


def test_call_req_ext_to_an_external_number(sim: Simulator, client: SoapClient) -> None:
    result = client.call_req_ext(
        GIULIA,
        calling_id="00000066",
        called_id="0",
        calling_type=CallableType.USER,
        called_type=CallableType.GATEWAY,
        calling_number="202",
        called_number="+390287654321",
    )
    leg = sim.leg(result.values["user_call_id"])
    assert leg.user.extension == "202"
    assert leg.remote.number == "+390287654321"
    assert leg.ext_id == result.external_id


def test_accept_hold_retrieve_recording_switch_disconnect(
    sim: Simulator, client: SoapClient, sink: MemorySink
) -> None:
    call = sim.incoming_call("+390612345678", "201")
    leg_id = call.legs[0].user_call_id
    client.call_accept(MARIO, leg_id)
    assert sim.leg(leg_id).state is LegState.ACTIVE
    client.call_hold(MARIO, leg_id)
    assert sim.leg(leg_id).state is LegState.HELD
    client.call_retrieve(MARIO, leg_id)
    assert sim.leg(leg_id).state is LegState.ACTIVE
    client.call_rec_start(MARIO, leg_id)
    assert sim.leg(leg_id).recording is True
    client.call_rec_stop(MARIO, leg_id)
    assert sim.leg(leg_id).recording is False
    client.call_device_switch(MARIO, leg_id, "000012A1")
    assert sim.leg(leg_id).device_id == "000012A1"
    client.call_disconnect(MARIO, leg_id)
    assert sim.leg(leg_id).state is LegState.ENDED
    # hold, retrieve, recording and device switch emit nothing (the document has no event)
    assert codes(sink) == [16, 18, 21]
    assert [e.command for e in sim.soap_log] == [
        "CallAccept",
        "CallHold",
        "CallRetrieve",
        "CallRecStart",
        "CallRecStop",
        "CallDeviceSwitch",
        "CallDisconnect",
    ]


def test_divert_ends_the_ringing_leg_and_rings_the_new_extension(
    sim: Simulator, client: SoapClient, sink: MemorySink
) -> None:
    call = sim.incoming_call("+390612345678", "201", caller_name="Anna Neri")
    leg_id = call.legs[0].user_call_id
    result = client.call_divert(MARIO, leg_id, "203")
    new_id = result.values["new_user_call_id"]
    events = [call_event(e) for e in sink.events]
    assert [e.ssn_event for e in events] == [16, 21, 16]
    assert events[1].call_id == leg_id
    assert events[2].call_id == new_id
    assert events[2].local_number == "203"
    assert events[2].remote_number == "+390612345678"
    assert events[2].identity is not None
    assert events[2].identity.display_name == "Anna Neri"


def test_transfer_joins_the_two_remote_parties(
    sim: Simulator, client: SoapClient, sink: MemorySink
) -> None:
    outside = sim.incoming_call("+390612345678", "201")
    sim.answer(outside)
    client.call_hold(MARIO, outside.legs[0].user_call_id)
    consult = sim.internal_call("201", "202")
    sim.answer(consult, "202")
    giulia_leg = consult.legs_of("202")[0]
    client.call_transfer(MARIO, outside.legs[0].user_call_id, consult.legs[0].user_call_id)
    assert consult.resolved() is outside
    assert giulia_leg.remote.number == "+390612345678"
    sim.hangup(outside, by="remote", extension="202")
    events = [call_event(e) for e in sink.events]
    mario = [e for e in events if e.sender_id == "00000065"]
    assert [e.ssn_event for e in mario] == [16, 18, 17, 18, 21, 21]
    last = events[-1]
    assert last.ssn_event == 20
    assert last.call_id == giulia_leg.user_call_id
    assert last.remote_number == "+390612345678"
    assert last.local_number == "202"


def test_pick_takes_a_call_ringing_elsewhere(
    sim: Simulator, client: SoapClient, sink: MemorySink
) -> None:
    call = sim.incoming_call("+390612345678", "201")
    result = client.call_pick(GIULIA, "201", "000012A2")
    picked = sim.leg(result.values["user_call_id"])
    assert picked.user.extension == "202"
    assert picked.state is LegState.ACTIVE
    assert call.legs[0].state is LegState.ENDED
    events = [call_event(e) for e in sink.events]
    assert [(e.ssn_event, e.call_id) for e in events] == [
        (16, call.legs[0].user_call_id),
        (16, picked.user_call_id),
        (20, call.legs[0].user_call_id),
        (18, picked.user_call_id),
    ]


def test_crud_event_is_accepted_and_recorded(sim: Simulator, client: SoapClient) -> None:
    client.crud_event(CrudAction.UPDATE, CrudEntityType.USER, None, "00000065")
    client.crud_event(CrudAction.CREATE, CrudEntityType.GATEWAY, GatewayType.GSM, 7)
    assert sim.crud_events == [
        {
            "crud_event_action": "3",
            "crud_event_entity_type": "2",
            "crud_event_entity_id": "00000065",
        },
        {
            "crud_event_action": "1",
            "crud_event_entity_type": "4",
            "crud_event_entity_subtype": "3",
            "crud_event_entity_id": "00000007",
        },
    ]
