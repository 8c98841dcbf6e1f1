"""Issue 13, the originate side, end to end with the simulator as the PBX: a 200 that is not
SOAP, repeated clicks, ambiguous ids, the agent's device, the param1 form, and click-to-call
correlated without ``ext_id`` (or with it on both legs of an internal call)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from server_support import ADMIN_TOKEN, Stack, call_state, run_stack, wait_call_state

from callbridge.models import Originate
from callbridge.testing import wait_until

NUMBER = "+39 02 8765 4321"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with run_stack(tmp_path, heartbeat=0.2) as running:
        yield running


def place(stack: Stack, headers: dict[str, str] | None = None, **body: Any) -> Any:
    return stack.http.post(
        "/v1/calls",
        json={"agent": "201", "number": NUMBER, **body},
        headers={**stack.api(), **(headers or {})},
    )


def state_of(stack: Stack, external_id: str) -> dict[str, Any]:
    return call_state(stack, external_id, ADMIN_TOKEN)


def wait_state(stack: Stack, external_id: str, wanted: str) -> dict[str, Any]:
    return wait_call_state(stack, external_id, wanted, ADMIN_TOKEN)


def call_reqs(stack: Stack) -> list[Any]:
    return [e for e in stack.commands() if e.command in ("CallReq", "CallReqExt")]


# --- never ring a phone twice -----------------------------------------------------------------


@pytest.mark.parametrize("answer", ["empty", "html", "ok", "result"])
def test_non_soap_200_is_unconfirmed_not_refused(stack: Stack, answer: str) -> None:
    stack.sim.service.answer = answer
    response = place(stack)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "unconfirmed"
    assert "not a SOAP answer" in body["error"]
    assert len(call_reqs(stack)) == 1
    # The PBX did place it: its events move the request on.
    wait_state(stack, body["external_id"], "ringing")


def test_idempotency_key_returns_the_first_request(stack: Stack) -> None:
    key = {"Idempotency-Key": "click-7f3a"}
    first = place(stack, key)
    assert first.status_code == 202, first.text
    again = place(stack, key)
    assert again.status_code == 200, again.text
    assert again.json()["external_id"] == first.json()["external_id"]
    assert len(call_reqs(stack)) == 1
    # Another key is another request, even to the same number.
    other = place(stack, {"Idempotency-Key": "click-8b01"})
    assert other.status_code == 202, other.text
    assert other.json()["external_id"] != first.json()["external_id"]
    assert len(call_reqs(stack)) == 2


def test_second_click_on_the_same_number_returns_the_first(stack: Stack) -> None:
    stack.sim.service.answer = "ok"  # the first stays unconfirmed until its events come
    first = place(stack)
    assert first.status_code == 202, first.text
    again = place(stack, number="02 8765 4321")  # the same number, written otherwise
    assert again.status_code == 200, again.text
    assert again.json()["external_id"] == first.json()["external_id"]
    assert again.json()["state"] in ("unconfirmed", "ringing")
    assert len(call_reqs(stack)) == 1
    # Another agent, or another number, is a new call.
    assert place(stack, agent="202", headers=stack.api(ADMIN_TOKEN)).status_code == 202
    assert place(stack, number="+39 06 1111 2222").status_code == 202
    assert len(call_reqs(stack)) == 3


def test_click_after_the_first_call_ended_is_a_new_call(stack: Stack) -> None:
    first = place(stack).json()["external_id"]
    wait_state(stack, first, "ringing")
    call = stack.sim.find_call(first)
    assert call is not None
    stack.sim.hangup(call, by="remote")
    wait_state(stack, first, "ended")
    again = place(stack)
    assert again.status_code == 202, again.text
    assert again.json()["external_id"] != first


# --- ids --------------------------------------------------------------------------------------


def test_ambiguous_ids_are_refused_in_the_api(stack: Stack) -> None:
    response = place(stack, device_id="4768")
    assert response.status_code == 422, response.text
    assert "00004768" in response.text and "000012A0" in response.text
    explicit = place(stack, device_id="dec:4768", number="+39 06 5555 1234")
    assert explicit.status_code == 202, explicit.text
    assert call_reqs(stack)[-1].fields["call_req_device_id"] == "000012A0"
    hangup = stack.http.post("/v1/calls/4768/hangup", headers=stack.api())
    assert hangup.status_code == 422, hangup.text
    assert "000012A0" in hangup.text


def test_transfer_to_an_extension_is_refused_clearly(stack: Stack) -> None:
    external_id = place(stack).json()["external_id"]
    wait_state(stack, external_id, "ringing")
    before = len(stack.commands())
    for to in ("202", "299"):
        response = stack.http.post(
            f"/v1/calls/{external_id}/transfer", json={"to_call_id": to}, headers=stack.api()
        )
        assert response.status_code == 422, response.text
        assert "to_extension" in response.text
        assert "00000202" not in response.text or "ambiguous" in response.text
    assert len(stack.commands()) == before


# --- the agent's device and param1 ----------------------------------------------------------


def test_device_learnt_from_the_login_event(stack: Stack) -> None:
    first = place(stack)
    assert first.status_code == 202, first.text
    assert "call_req_device_id" not in call_reqs(stack)[-1].fields  # nothing known yet
    stack.sim.device_login("000012A1")  # Mario's softphone (201)
    stack.sim.flush()
    wait_until(lambda: stack.engine.wait_idle(timeout=1), "the login event handled")
    assert place(stack, number="+39 06 5555 0001").status_code == 202
    assert call_reqs(stack)[-1].fields["call_req_device_id"] == "000012A1"
    stack.sim.device_logout("000012A1")
    stack.sim.flush()
    wait_until(lambda: stack.engine.wait_idle(timeout=1), "the logout event handled")
    assert place(stack, number="+39 06 5555 0002").status_code == 202
    assert "call_req_device_id" not in call_reqs(stack)[-1].fields


def test_device_and_param1_form_from_settings(tmp_path: Path) -> None:
    pbx = {"agent_devices": ["201=000012A0"], "param1_form": "calling"}
    with run_stack(tmp_path, pbx=pbx) as stack:
        response = place(stack, agent="calling-mario@acme")
        assert response.status_code == 202, response.text
        sent = call_reqs(stack)[-1]
        assert sent.ok, sent.fault
        assert sent.fields["call_req_device_id"] == "000012A0"
        assert sent.fields["param1"] == "calling-mario@acme"
        assert response.json()["agent"] == "auth-mario@acme"
        # A device in the request wins over the setting.
        place(stack, device_id="000012A1", number="+39 06 5555 0003")
        assert call_reqs(stack)[-1].fields["call_req_device_id"] == "000012A1"


# --- correlation ------------------------------------------------------------------------------


def _clicked(stack: Stack, name: str) -> dict[str, str]:
    contact_id = stack.directory.add_contact(name, ["+39 06 9999 0000"])
    return {"connector": "directory", "record_type": "Contact", "record_id": str(contact_id)}


def test_click_to_call_without_ext_id_is_correlated(stack: Stack) -> None:
    stack.sim.ext_id_mode = "none"
    stack.sim.service.answer = "html"
    crm = _clicked(stack, "Neri Costruzioni")
    response = place(stack, crm=crm)
    assert response.status_code == 202, response.text
    external_id = response.json()["external_id"]
    ringing = wait_state(stack, external_id, "ringing")
    call = stack.sim.find_call(external_id)
    assert call is not None
    stored = [s.event for s in stack.journal.events_after(0)]
    assert stored and all(not e.params.get("ext_id") for e in stored)
    assert ringing["call"] is not None
    assert ringing["call"]["user_call_id"] == call.legs[0].user_call_id
    stack.sim.answer(call)
    wait_state(stack, external_id, "answered")
    stack.sim.hangup(call, by="remote")
    ended = wait_state(stack, external_id, "ended")
    assert ended["call"]["external_id"] == external_id
    assert stack.engine.wait_idle(timeout=30)
    wait_until(lambda: stack.directory.list_activities(10), "the activity")
    activities = stack.directory.list_activities(10)
    assert [a.contact_id for a in activities] == [int(crm["record_id"])]


def test_second_call_to_the_same_number_does_not_take_the_click(stack: Stack) -> None:
    """Only the first outgoing leg after the click is the click's."""
    stack.sim.ext_id_mode = "none"
    external_id = place(stack).json()["external_id"]
    wait_state(stack, external_id, "ringing")
    bound = stack.journal.get_originate(external_id)
    call = stack.sim.find_call(external_id)
    assert bound is not None and call is not None
    by_hand = stack.sim.outgoing_call("201", NUMBER)  # dialled on the phone, no click
    stack.sim.flush()
    assert stack.engine.wait_idle(timeout=30)
    again = stack.journal.get_originate(external_id)
    assert again is not None
    assert again.user_call_id == call.legs[0].user_call_id != by_hand.legs[0].user_call_id


def test_unmatched_originate_expires(tmp_path: Path) -> None:
    with run_stack(tmp_path, pbx={"originate_window": 1.0}) as stack:
        # The second one is "requested": the HTTP process may still be sending it.
        for external_id, age, state in (
            ("cb-lost-1", 40, "sent"),
            ("cb-sending-1", 5, "requested"),
        ):
            stack.journal.create_originate(
                Originate(
                    external_id=external_id,
                    user="auth-mario@acme",
                    extension="201",
                    number=NUMBER,
                    created_at=datetime.now(UTC) - timedelta(seconds=age),
                    state=state,
                )
            )
        lost = wait_state(stack, "cb-lost-1", "unmatched")
        assert "within 1 s" in lost["error"]
        assert state_of(stack, "cb-sending-1")["state"] == "requested"


def test_internal_click_binds_the_callers_leg_only(stack: Stack) -> None:
    """The callee's 16 echoes the ext_id: one activity on the clicked record, not two."""
    stack.sim.ext_id_mode = "every_leg"
    crm = _clicked(stack, "Giulia's lead")
    response = place(stack, crm=crm, number="202")
    assert response.status_code == 202, response.text
    external_id = response.json()["external_id"]
    wait_state(stack, external_id, "ringing")
    call = stack.sim.find_call(external_id)
    assert call is not None
    caller, callee = call.legs[0], call.legs[1]
    assert callee.user.extension == "202"
    stack.sim.answer(call, "202")
    wait_state(stack, external_id, "answered")
    stack.sim.hangup(call, by="local", extension="201")
    ended = wait_state(stack, external_id, "ended")
    assert ended["call"]["user_call_id"] == caller.user_call_id
    assert stack.engine.wait_idle(timeout=30)
    wait_until(lambda: len(stack.directory.list_activities(10)) >= 2, "both legs' activities")
    activities = stack.directory.list_activities(10)
    on_record = [a for a in activities if a.contact_id == int(crm["record_id"])]
    assert len(on_record) == 1
    assert on_record[0].local_extension == "201"
