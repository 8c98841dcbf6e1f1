"""The PBX ingress: 200 only once durable, 4xx with a reason for bad input, nothing lost."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from server_support import INGRESS_TOKEN, make_settings

from callbridge.errors import ConfigurationError
from callbridge.journal.sqlite import SqliteJournal
from callbridge.server.app import create_app
from callbridge.server.services import Services
from callbridge.voispeed import CallIncoming, UnknownEvent

RING = {
    "ssn_event": "16",
    "sender_id": "7",
    "sender_type": "0",
    "call_id": "000012A0",
    "ext_id": "",
    "number": "0612345678",
    "ext": "201",
    "identity": "Mario|Rossi|Sales|0|0",
    "group": "",
}


def get(client: TestClient, params: dict[str, str], token: str | None = INGRESS_TOKEN):
    query = dict(params)
    if token is not None:
        query["token"] = token
    return client.get("/pbx/events?" + urlencode(query))


def test_event_is_durable_before_the_answer(client: TestClient, journal: SqliteJournal) -> None:
    response = get(client, RING)
    assert response.status_code == 200
    assert response.text.startswith("ok ")
    seq = int(response.text.split()[1])
    stored = journal.events_after(seq - 1)
    assert [e.seq for e in stored] == [seq]
    assert isinstance(stored[0].event, CallIncoming)
    assert stored[0].event.remote_number == "0612345678"
    assert "token" not in stored[0].raw
    assert "token" not in stored[0].event.params


def test_duplicate_is_answered_200_and_changes_nothing(
    client: TestClient, journal: SqliteJournal
) -> None:
    first = get(client, RING)
    second = get(client, RING)
    assert second.status_code == 200
    assert second.text.split() == ["duplicate", first.text.split()[1]]
    assert len(journal.events_after(0)) == 1


def test_form_post_is_accepted(client: TestClient, journal: SqliteJournal) -> None:
    response = client.post("/pbx/events", data={**RING, "token": INGRESS_TOKEN})
    assert response.status_code == 200, response.text
    assert len(journal.events_after(0)) == 1


@pytest.mark.parametrize(
    ("token", "status", "reason"),
    [(None, 401, "token missing"), ("wrong-token", 403, "token invalid")],
)
def test_bad_token_is_refused_and_kept(
    client: TestClient, journal: SqliteJournal, token: str | None, status: int, reason: str
) -> None:
    response = get(client, RING, token=token)
    assert response.status_code == status
    assert reason in response.text
    assert journal.events_after(0) == []
    rejected = journal.list_rejected()
    assert len(rejected) == 1
    assert rejected[0].reason == reason
    assert "wrong-token" not in rejected[0].raw


@pytest.mark.parametrize(
    ("query", "status", "fragment"),
    [
        ({**RING, "call_id": ""}, 400, "call_id: missing"),
        ({**RING, "call_id": "not-hex!"}, 400, "call_id"),
        ({**RING, "ssn_event": "sixteen"}, 400, "ssn_event"),
        ({k: v for k, v in RING.items() if k != "ssn_event"}, 400, "ssn_event: missing"),
        ({**RING, "identity": "x" * 5000}, 400, "identity"),
        ({**RING, "company_id": "c" * 65}, 400, "company_id: longer than 64"),
        ({**RING, "number": "y" * 20000}, 413, "larger than"),
    ],
)
def test_malformed_event_is_4xx_with_reason_and_kept(
    client: TestClient, journal: SqliteJournal, query: dict[str, str], status: int, fragment: str
) -> None:
    response = get(client, query)
    assert response.status_code == status
    assert fragment in response.text
    assert journal.events_after(0) == []
    rejected = journal.list_rejected()
    assert len(rejected) == 1
    assert fragment in rejected[0].reason
    assert INGRESS_TOKEN not in rejected[0].raw


def test_non_utf8_is_read_as_cp1252_and_kept_raw(
    client: TestClient, journal: SqliteJournal
) -> None:
    response = client.get(f"/pbx/events?token={INGRESS_TOKEN}&ssn_event=16&call_id=1&number=%FF%FE")
    assert response.status_code == 200, response.text
    (stored,) = journal.events_after(0)
    assert stored.event.params["number"] == "\u00ff\u00fe"
    assert stored.event.params["cb_raw_number"] == "%FF%FE"
    assert journal.list_rejected() == []


def test_conflicting_repeated_parameter_is_refused(
    client: TestClient, journal: SqliteJournal
) -> None:
    query = urlencode({**RING, "token": INGRESS_TOKEN}) + "&call_id=000012A1"
    response = client.get("/pbx/events?" + query)
    assert response.status_code == 400
    assert "repeated" in response.text
    assert journal.events_after(0) == []


def test_body_that_is_not_a_form_is_refused(client: TestClient, journal: SqliteJournal) -> None:
    response = client.post(
        "/pbx/events?token=" + INGRESS_TOKEN,
        content=b'{"ssn_event": 16}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 415
    assert journal.events_after(0) == []


def test_unknown_event_is_accepted_and_kept_whole(
    client: TestClient, journal: SqliteJournal
) -> None:
    response = get(client, {"ssn_event": "42", "whatever": "x", "call_id": "1"})
    assert response.status_code == 200
    stored = journal.events_after(0)
    assert isinstance(stored[0].event, UnknownEvent)
    assert stored[0].event.params["whatever"] == "x"


def test_source_network_not_allowed(tmp_path: Path, journal: SqliteJournal) -> None:
    settings = make_settings(tmp_path, allowed_networks=["10.0.0.0/8"])
    with TestClient(create_app(Services(settings=settings, journal=journal))) as client:
        response = get(client, RING)
    assert response.status_code == 403
    assert journal.events_after(0) == []


def test_refuses_to_start_without_token(tmp_path: Path, journal: SqliteJournal) -> None:
    settings = make_settings(tmp_path).model_copy(update={"ingress_token": None})
    with pytest.raises(ConfigurationError, match="CALLBRIDGE_INGRESS_TOKEN"):
        create_app(Services(settings=settings, journal=journal))
    insecure = settings.model_copy(
        update={"server": settings.server.model_copy(update={"insecure": True})}
    )
    with TestClient(create_app(Services(settings=insecure, journal=journal))) as client:
        assert get(client, RING, token=None).status_code == 200


def test_health_ready_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").status_code == 200
    get(client, RING)
    text = client.get("/metrics").text
    assert "callbridge_events_accepted_total" in text
    assert "callbridge_ingress_ack_seconds_bucket" in text


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/pbx/events", "/v1/calls", "/v1/agents/{extension}/events", "/healthz"):
        assert path in spec["paths"], path


def test_metrics_count_deliveries_by_plugin_and_state(
    client: TestClient, journal: SqliteJournal
) -> None:
    journal.enqueue_delivery(
        call_key="-:000012A0", plugin="directory", action="log_call", payload={}
    )
    text = client.get("/metrics").text
    assert 'callbridge_deliveries{plugin="directory",state="pending"} 1.0' in text


def test_metrics_scrape_survives_a_closed_journal(tmp_path: Path) -> None:
    """A journal that went away costs the deliveries gauge, never the whole scrape."""
    journal = SqliteJournal(tmp_path / "gone.sqlite3")
    with TestClient(create_app(Services(settings=make_settings(tmp_path), journal=journal))) as c:
        journal.close()
        response = c.get("/metrics")
    assert response.status_code == 200
    assert "callbridge_events_accepted_total" in response.text
