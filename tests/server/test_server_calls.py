"""Click-to-call against the simulator: the external id goes out in CallReq, comes back on the
PBX's events, moves the request's state and puts the activity on the CRM record it came from."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_support import (
    ADMIN_TOKEN,
    API_TOKEN,
    Stack,
    call_state,
    stack_settings,
    wait_call_state,
)

from callbridge.journal.sqlite import SqliteJournal
from callbridge.models import Originate
from callbridge.server.app import create_app
from callbridge.server.services import Services
from callbridge.settings import PbxSettings
from callbridge.testing import wait_until
from callbridge.voispeed.soap import SoapClient

NUMBER = "+39 02 8765 4321"


def place(stack: Stack, token: str = API_TOKEN, **body: Any) -> Any:
    return stack.http.post(
        "/v1/calls", json={"agent": "201", "number": NUMBER, **body}, headers=stack.api(token)
    )


state = call_state
wait_state = wait_call_state


def placed_call(stack: Stack, **body: Any) -> tuple[str, Any]:
    """Place a call through the API and wait until the PBX reported it ringing."""
    response = place(stack, **body)
    assert response.status_code == 202, response.text
    external_id = response.json()["external_id"]
    wait_state(stack, external_id, "ringing")
    call = stack.sim.find_call(external_id)
    assert call is not None
    return external_id, call


def test_click_to_call_goes_round_trip_to_the_crm_record(stack: Stack) -> None:
    # The record the agent clicked from: a contact whose numbers are NOT the one dialled,
    # so only the click-to-call context can put the activity there.
    contact_id = stack.directory.add_contact("Neri Costruzioni", ["+39 06 9999 0000"])
    crm = {"connector": "directory", "record_type": "Contact", "record_id": str(contact_id)}
    response = place(stack, crm=crm, device_id="000012A0")
    assert response.status_code == 202, response.text
    body = response.json()
    external_id = body["external_id"]
    assert body["state"] in ("sent", "ringing")
    assert body["crm"] == crm

    sent = [e for e in stack.commands() if e.command == "CallReq"]
    assert len(sent) == 1
    assert sent[0].fields["call_req_ext_id"] == external_id
    assert sent[0].fields["param1"] == "auth-mario@acme"
    assert sent[0].ok

    ringing = wait_state(stack, external_id, "ringing")
    call = stack.sim.find_call(external_id)
    assert call is not None
    user_call_id = call.legs[0].user_call_id
    stack.sim.answer(call)
    answered = wait_state(stack, external_id, "answered")
    stack.sim.hangup(call, by="remote")
    ended = wait_state(stack, external_id, "ended")

    # Every event the PBX sent for the call carried the external id back.
    stored = [s for s in stack.journal.events_after(0) if s.event.call_id == user_call_id]
    assert [s.event.ssn_event for s in stored] == [17, 18, 20]
    assert {s.event.ext_id for s in stored} == {external_id}

    assert ringing["call"] is None or ringing["call"]["state"] == "ringing"
    assert answered["state"] == "answered"
    assert ended["call"] is not None, "GET /v1/calls/{id} does not show the call it became"
    assert ended["call"]["outcome"] == "answered"
    assert ended["call"]["user_call_id"] == user_call_id
    assert ended["duration_s"] is not None and ended["duration_s"] >= 0

    wait_until(lambda: stack.directory.list_activities(10), "the activity")
    assert stack.engine.wait_idle(timeout=30)
    activities = stack.directory.list_activities(10)
    assert len(activities) == 1
    assert activities[0].contact_id == contact_id
    assert activities[0].contact_name == "Neri Costruzioni"
    assert activities[0].direction == "outbound"
    assert activities[0].outcome == "answered"


def test_record_uses_call_req_ext(stack: Stack) -> None:
    response = place(stack, record=True, calling_id="00000065")
    assert response.status_code == 202, response.text
    external_id = response.json()["external_id"]
    sent = [e for e in stack.commands() if e.command == "CallReqExt"]
    assert len(sent) == 1
    assert sent[0].fields["call_request_external_id"] == external_id
    assert sent[0].ok, sent[0].fault
    call = stack.sim.find_call(external_id)
    assert call is not None
    assert call.legs[0].recording is True
    wait_state(stack, external_id, "ringing")


def test_record_without_calling_id_is_422_and_burns_nothing(stack: Stack) -> None:
    response = place(stack, record=True, external_id="cb-rec-1")
    assert response.status_code == 422
    assert "calling_id" in response.text
    assert stack.commands() == []
    # The same request, corrected, may use the same external id.
    again = place(stack, record=True, external_id="cb-rec-1", calling_id="00000065")
    assert again.status_code == 202, again.text


@pytest.mark.parametrize(
    ("token", "body", "status", "fragment"),
    [
        (None, {}, 401, "bearer token required"),
        ("not-a-token-at-all-xxxxxxxx", {}, 401, "invalid token"),
        (API_TOKEN, {"agent": "202"}, 403, "may not act"),
        (API_TOKEN, {"agent": "auth-giulia@acme"}, 403, "may not act"),
        (ADMIN_TOKEN, {"agent": "299"}, 422, "unknown agent"),
        (API_TOKEN, {"external_id": "bad id!"}, 422, "external"),
        (API_TOKEN, {"external_id": "x" * 41}, 422, ""),
        (API_TOKEN, {"number": ""}, 422, ""),
        (API_TOKEN, {"device_id": "not-hex"}, 422, ""),
        (API_TOKEN, {"number": "call me maybe"}, 422, "call_req_number"),
        (API_TOKEN, {"number": "9" * 40}, 422, "call_req_number"),
        (API_TOKEN, {"agent": "2" * 5000}, 422, "unknown agent"),
        (API_TOKEN, {"calling_id": "zz"}, 422, "calling_id"),
    ],
)
def test_bad_requests_are_4xx_and_send_nothing(
    stack: Stack, token: str | None, body: dict[str, Any], status: int, fragment: str
) -> None:
    headers = stack.api(token) if token else {}
    response = stack.http.post(
        "/v1/calls", json={"agent": "201", "number": NUMBER, **body}, headers=headers
    )
    assert response.status_code == status, response.text
    assert fragment in response.text
    assert len(response.text) < 2000
    assert stack.commands() == []
    if "external_id" in body and status == 422:
        assert stack.journal.get_originate(body["external_id"]) is None


def test_duplicate_external_id_is_409_and_sends_once(stack: Stack) -> None:
    first = place(stack, external_id="cb-dup-1")
    assert first.status_code == 202, first.text
    second = place(stack, external_id="cb-dup-1")
    assert second.status_code == 409
    assert [e.command for e in stack.commands()] == ["CallReq"]


def test_concurrent_duplicates_send_once(stack: Stack) -> None:
    """Several requests with one external id at once: one 202, the others 409, never 500."""
    results: list[int] = []

    def one() -> None:
        results.append(place(stack, external_id="cb-race-1").status_code)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [202] + [409] * 5
    assert [e.command for e in stack.commands()] == ["CallReq"]


def test_pbx_fault_is_502_with_the_pbx_reason(stack: Stack) -> None:
    # Device 000012A2 belongs to 202: the PBX refuses to call from it for 201.
    response = place(stack, device_id="000012A2", external_id="cb-fault-1")
    assert response.status_code == 502, response.text
    detail = response.json()["detail"]
    fault = stack.commands()[-1].fault
    assert fault
    assert fault in detail
    assert state(stack, "cb-fault-1")["state"] == "failed"


def test_token_may_only_see_its_own_calls(stack: Stack) -> None:
    response = stack.http.post(
        "/v1/calls",
        json={"agent": "202", "number": NUMBER, "external_id": "cb-giulia-1"},
        headers=stack.api(ADMIN_TOKEN),
    )
    assert response.status_code == 202, response.text
    hidden = stack.http.get("/v1/calls/cb-giulia-1", headers=stack.api(API_TOKEN))
    assert hidden.status_code == 404
    hangup = stack.http.post("/v1/calls/cb-giulia-1/hangup", headers=stack.api(API_TOKEN))
    assert hangup.status_code == 404
    assert [e.command for e in stack.commands()] == ["CallReq"]


# --- call control ------------------------------------------------------------------------


def last_command(stack: Stack) -> Any:
    entry = stack.commands()[-1]
    assert entry.ok, entry.fault
    return entry


def control(stack: Stack, ref: str, action: str, body: dict[str, Any] | None = None) -> Any:
    response = stack.http.post(f"/v1/calls/{ref}/{action}", json=body, headers=stack.api())
    assert response.status_code == 200, response.text
    return last_command(stack)


def test_call_control_by_external_id(stack: Stack) -> None:
    external_id, call = placed_call(stack)
    leg = call.legs[0].user_call_id
    stack.sim.answer(call)
    wait_state(stack, external_id, "answered")
    expected = [
        ("hold", None, "CallHold"),
        ("retrieve", None, "CallRetrieve"),
        ("record", {"on": True}, "CallRecStart"),
        ("record", {"on": False}, "CallRecStop"),
        ("hangup", None, "CallDisconnect"),
    ]
    for action, body, command in expected:
        entry = control(stack, external_id, action, body)
        assert entry.command == command
        assert entry.fields["param1"] == "auth-mario@acme"
        assert leg in entry.fields.values(), entry.fields
    wait_state(stack, external_id, "ended")


def test_call_control_by_user_call_id(stack: Stack) -> None:
    call = stack.sim.incoming_call("+39 06 1234 5678", "201")
    leg = call.legs[0].user_call_id
    stack.sim.answer(call)
    stack.sim.flush()
    wait_until(
        lambda: any(c.user_call_id == leg for c in stack.journal.list_calls(10)),
        "the call in the journal",
    )
    for action, command in [("hold", "CallHold"), ("retrieve", "CallRetrieve")]:
        entry = control(stack, leg.lower(), action)
        assert entry.command == command
        assert entry.fields["param1"] == "auth-mario@acme"
        assert leg in entry.fields.values()
    entry = control(stack, leg, "hangup")
    assert entry.command == "CallDisconnect"
    unknown = stack.http.post("/v1/calls/0000BEEF/hangup", headers=stack.api())
    assert unknown.status_code == 404


def test_transfer_and_divert(stack: Stack) -> None:
    # Attended transfer: the placed call (held) to a consultation call of the same agent.
    external_id, call = placed_call(stack)
    stack.sim.answer(call)
    wait_state(stack, external_id, "answered")
    control(stack, external_id, "hold")
    consult = stack.sim.internal_call("201", "202")
    stack.sim.answer(consult, "202")
    to_leg = consult.legs[0].user_call_id
    entry = control(stack, external_id, "transfer", {"to_call_id": to_leg})
    assert entry.command == "CallTransfer"
    assert entry.fields["param1"] == "auth-mario@acme"
    assert call.legs[0].user_call_id in entry.fields.values()
    assert to_leg in entry.fields.values()

    # Divert: a call ringing on 201, by its user call id, to extension 203.
    ringing = stack.sim.incoming_call("+39 06 1234 5678", "201")
    leg = ringing.legs[0].user_call_id
    stack.sim.flush()
    wait_until(
        lambda: any(c.user_call_id == leg for c in stack.journal.list_calls(10)),
        "the ringing call in the journal",
    )
    bad = stack.http.post(
        f"/v1/calls/{leg}/transfer", json={"to_extension": "20;3"}, headers=stack.api()
    )
    assert bad.status_code == 422, bad.text
    assert stack.commands()[-1].command != "CallDivert"
    entry = control(stack, leg, "transfer", {"to_extension": "203"})
    assert entry.command == "CallDivert"
    assert leg in entry.fields.values()
    assert "203" in entry.fields.values()
    nothing = stack.http.post(f"/v1/calls/{leg}/transfer", json={}, headers=stack.api())
    assert nothing.status_code in (404, 422)


def test_control_of_unknown_or_unreported_calls(stack: Stack) -> None:
    unknown = stack.http.post("/v1/calls/cb-nothing-yet/hold", headers=stack.api())
    assert unknown.status_code == 404
    # A request the PBX has not reported yet (no user call id): 409, nothing sent.
    stack.journal.create_originate(
        Originate(
            external_id="cb-early-1",
            user="auth-mario@acme",
            extension="201",
            number=NUMBER,
            created_at=datetime.now(UTC),
            state="sent",
        )
    )
    early = stack.http.post("/v1/calls/cb-early-1/hold", headers=stack.api())
    assert early.status_code == 409
    assert "not reported" in early.text
    assert stack.commands() == []


# --- the PBX does not answer -------------------------------------------------------------


class BlackHole:
    """Accepts connections, reads what is sent, never answers."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self.received: list[bytes] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
                self.received.append(b"")
                index = len(self.received) - 1
            threading.Thread(target=self._read, args=(conn, index), daemon=True).start()

    def _read(self, conn: socket.socket, index: int) -> None:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.received[index] += data

    def requests_with(self, text: bytes) -> int:
        with self._lock:
            return sum(text in r for r in self.received)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        with self._lock:
            for conn in self._conns:
                conn.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    server = BlackHole()
    yield server
    server.close()


def test_pbx_silent_after_the_request_is_202_unconfirmed_sent_once(
    tmp_path: Path, black_hole: BlackHole
) -> None:
    pbx = PbxSettings(
        soap_url=f"http://127.0.0.1:{black_hole.port}/soap",
        user="auth-callbridge@acme",
        password="callbridge",  # type: ignore[arg-type]
        read_timeout=0.5,
        connect_timeout=2,
    )
    settings = stack_settings(tmp_path, pbx)
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    soap = SoapClient(settings.pbx, sleep=lambda _s: None)
    try:
        app = create_app(Services(settings=settings, journal=journal, pbx=soap))
        with TestClient(app) as client:
            response = client.post(
                "/v1/calls",
                json={"agent": "201", "number": NUMBER, "external_id": "cb-silent-1"},
                headers={"Authorization": f"Bearer {API_TOKEN}"},
            )
            assert response.status_code == 202, response.text
            body = response.json()
            assert body["state"] == "unconfirmed"
            assert body["external_id"] == "cb-silent-1"
            assert black_hole.requests_with(b"CallReq") == 1
            assert black_hole.requests_with(b"cb-silent-1") == 1
            again = client.get(
                "/v1/calls/cb-silent-1", headers={"Authorization": f"Bearer {API_TOKEN}"}
            )
            assert again.json()["state"] == "unconfirmed"
    finally:
        soap.close()
        journal.close()
