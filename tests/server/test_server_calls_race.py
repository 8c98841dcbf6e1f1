"""The PBX's events may move a click-to-call on before its SOAP answer comes back.

A PBX that rings the agent's phone while it still handles CallReq sends 17 (and, for a short
call, 19/21) before it answers the request. The dispatcher then moves the Originate to
``ringing``/``ended``; writing ``sent`` when the SOAP answer finally arrives would move it
back, and ``GET /v1/calls/{id}`` would say ``sent`` for a call that is over.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_support import API_TOKEN, make_settings

from callbridge.engine.engine import Engine
from callbridge.journal.sqlite import SqliteJournal
from callbridge.plugins.manager import load_plugins
from callbridge.server.app import create_app
from callbridge.server.services import Services
from callbridge.voispeed.envelope import SoapRequest, SoapResult


class EagerPbx:
    """A PBX whose call events (through the real engine) precede its answer to CallReq."""

    def __init__(self, engine: Engine, answer: BaseException | None = None) -> None:
        self.engine = engine
        self.answer = answer

    def send(self, request: SoapRequest) -> SoapResult:
        fields = dict(request.fields)
        common = {
            "company_id": "1",
            "sender_type": "0",
            "call_id": "00000042",
            "ext_id": fields["call_req_ext_id"],
            "number": fields["call_req_number"],
            "ext": "201",
        }
        self.engine.ingest({"ssn_event": "17", **common})
        self.engine.ingest({"ssn_event": "19", **common})
        assert self.engine.wait_idle(30)
        assert self.engine.journal.get_originate(common["ext_id"]).state == "ended"  # type: ignore[union-attr]
        if self.answer is not None:
            raise self.answer
        return SoapResult(request.command, {}, "CallReqResponse")

    def close(self) -> None:
        pass


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, EagerPbx, SqliteJournal]]:
    settings = make_settings(tmp_path)
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    plugins = load_plugins(settings, entry_points=False, builtins=False)
    engine = Engine(settings, journal=journal, plugins=plugins, poll_interval=0.01)
    pbx = EagerPbx(engine)
    services = Services(
        settings=settings,
        journal=journal,
        pbx=pbx,  # type: ignore[arg-type]
        plugins=plugins,
        engine=engine,
    )
    engine.start()
    try:
        with TestClient(create_app(services)) as client:
            yield client, pbx, journal
    finally:
        engine.stop()
        journal.close()


def _place(client: TestClient) -> Any:
    return client.post(
        "/v1/calls",
        json={"agent": "201", "number": "0287654321"},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )


def test_a_late_soap_answer_does_not_move_the_call_back(
    setup: tuple[TestClient, EagerPbx, SqliteJournal],
) -> None:
    client, _pbx, journal = setup
    response = _place(client)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "ended"
    originate = journal.get_originate(body["external_id"])
    assert originate is not None
    assert originate.state == "ended"
    assert originate.user_call_id == "00000042"


def test_an_unconfirmed_answer_does_not_move_the_call_back(
    setup: tuple[TestClient, EagerPbx, SqliteJournal],
) -> None:
    from callbridge.voispeed import SoapOutcomeUnknown

    client, pbx, journal = setup
    pbx.answer = SoapOutcomeUnknown("CallReq", "no answer from the PBX", external_id=None)
    response = _place(client)
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "ended"
    originate = journal.get_originate(response.json()["external_id"])
    assert originate is not None
    assert originate.state == "ended"
