"""Form bodies as curl sends them: ``curl -d 'identity=Nicolò|...'`` does not percent-encode.

Such a body is valid UTF-8 but not ASCII (or, from a latin1 database, not UTF-8 at all).
Refusing it would drop the whole call (the PBX does not retry a 400) because the caller's
name has an accent.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from server_support import INGRESS_TOKEN

from callbridge.journal.sqlite import SqliteJournal
from callbridge.voispeed import CallIncoming

FORM = {"content-type": "application/x-www-form-urlencoded"}


def _body(identity: bytes) -> bytes:
    return b"ssn_event=16&call_id=000012A0&number=0612345678&ext=201&identity=" + identity


def test_raw_utf8_form_body_is_accepted(client: TestClient, journal: SqliteJournal) -> None:
    response = client.post(
        f"/pbx/events?token={INGRESS_TOKEN}",
        content=_body("Nicolò|Dell'Orto|Vendite|0|0".encode()),
        headers=FORM,
    )
    assert response.status_code == 200, response.text
    (stored,) = journal.events_after(0)
    assert isinstance(stored.event, CallIncoming)
    assert stored.event.identity is not None
    assert stored.event.identity.name == "Nicolò"
    assert stored.event.identity.surname == "Dell'Orto"


def test_raw_and_percent_encoded_utf8_are_one_event(
    client: TestClient, journal: SqliteJournal
) -> None:
    raw = client.post(
        f"/pbx/events?token={INGRESS_TOKEN}", content=_body("Nicolò".encode()), headers=FORM
    )
    encoded = client.post(
        f"/pbx/events?token={INGRESS_TOKEN}", content=_body(b"Nicol%C3%B2"), headers=FORM
    )
    assert raw.status_code == encoded.status_code == 200
    assert encoded.text.split()[0] == "duplicate"
    assert len(journal.events_after(0)) == 1


def test_bytes_that_are_not_utf8_are_read_per_parameter(
    client: TestClient, journal: SqliteJournal
) -> None:
    """One latin1 parameter falls back alone; a UTF-8 one beside it stays UTF-8."""
    body = _body(b"Nicol\xf2") + "&group=Caff\u00e8".encode()
    response = client.post(f"/pbx/events?token={INGRESS_TOKEN}", content=body, headers=FORM)
    assert response.status_code == 200, response.text
    (stored,) = journal.events_after(0)
    assert isinstance(stored.event, CallIncoming)
    assert stored.event.identity is not None
    assert stored.event.identity.name == "Nicolò"
    assert stored.event.group == "Caffè"
    assert stored.event.params["cb_raw_identity"] == "Nicol%F2"
    assert "cb_raw_group" not in stored.event.params
    assert journal.list_rejected() == []


def test_raw_latin1_and_its_percent_escape_are_one_event(
    client: TestClient, journal: SqliteJournal
) -> None:
    raw = client.post(
        f"/pbx/events?token={INGRESS_TOKEN}", content=_body(b"Nicol\xf2"), headers=FORM
    )
    escaped = client.post(
        f"/pbx/events?token={INGRESS_TOKEN}", content=_body(b"Nicol%F2"), headers=FORM
    )
    assert raw.status_code == escaped.status_code == 200
    assert escaped.text.split()[0] == "duplicate"
