"""A refused request is its company's where the ingress knows it (a valid token), nobody's
otherwise: so a company's export holds its own malformed events, never a stranger's."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from fastapi.testclient import TestClient
from server_support import INGRESS_TOKEN

from callbridge.journal.sqlite import SqliteJournal


def test_a_refused_request_with_the_token_is_the_companys(
    client: TestClient, journal: SqliteJournal
) -> None:
    malformed = urlencode({"ssn_event": "16", "token": INGRESS_TOKEN})  # no call_id
    assert client.get("/pbx/events?" + malformed).status_code == 400
    stranger = urlencode({"ssn_event": "16", "call_id": "1", "token": "wrong-token-0123456789"})
    assert client.get("/pbx/events?" + stranger).status_code in (401, 403)
    assert len(journal.list_rejected()) == 2
    assert journal.companies() == ["default"]
    (line,) = journal.export_company("default")
    record = json.loads(line)
    assert record["record"] == "rejected"
    assert INGRESS_TOKEN not in line and "wrong-token" not in line
