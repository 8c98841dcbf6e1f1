"""A flood of refused requests costs a bounded number of journal writes.

Anyone who reaches the port can send requests with a wrong token; each used to cost a durable
write. Now at most ``server.rejected_per_minute`` are kept per source (and ten times that for
all), the answers stay the same, and the rest are only counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_support import INGRESS_TOKEN, make_settings

from callbridge import metrics
from callbridge.journal.sqlite import SqliteJournal
from callbridge.server.app import create_app
from callbridge.server.ingress import RejectLimiter
from callbridge.server.services import Services

RING = {"ssn_event": "16", "call_id": "000012A0", "number": "0612345678", "ext": "201"}
LIMIT = 20


@pytest.fixture
def app(tmp_path: Path, journal: SqliteJournal) -> FastAPI:
    settings = make_settings(tmp_path, rejected_per_minute=LIMIT)
    return create_app(Services(settings=settings, journal=journal))


@pytest.fixture
def attacker(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, client=("203.0.113.7", 40000)) as c:
        yield c


def _unrecorded(reason: str) -> float:
    name = "callbridge_rejected_unrecorded_total"
    return metrics.REGISTRY.get_sample_value(name, {"reason": reason}) or 0.0


def test_a_flood_of_bad_tokens_writes_at_most_the_limit(
    attacker: TestClient, journal: SqliteJournal
) -> None:
    before = _unrecorded("token_invalid")
    query = urlencode({**RING, "token": "wrong-token"})

    statuses = {attacker.get(f"/pbx/events?{query}").status_code for _ in range(1000)}

    assert statuses == {403}
    rows = journal.list_rejected(limit=10_000)
    assert LIMIT - 1 <= len(rows) <= LIMIT + 1  # a token may refill during the flood
    assert all("wrong-token" not in r.raw for r in rows)
    assert _unrecorded("token_invalid") - before == 1000 - len(rows)
    assert journal.events_after(0) == []


def test_another_source_keeps_its_own_budget(
    app: FastAPI, attacker: TestClient, journal: SqliteJournal
) -> None:
    for _ in range(LIMIT + 5):
        attacker.get("/pbx/events?" + urlencode(RING))  # no token: 401
    with TestClient(app, client=("198.51.100.2", 40000)) as pbx:
        answer = pbx.get("/pbx/events?" + urlencode({"ssn_event": "16", "token": INGRESS_TOKEN}))
    assert answer.status_code == 400
    remotes = [r.remote for r in journal.list_rejected(limit=10_000)]
    assert remotes.count("203.0.113.7") <= LIMIT + 1
    assert remotes.count("198.51.100.2") == 1


def test_the_bucket_refills_with_time_and_an_ipv6_range_shares_one() -> None:
    now = [0.0]
    limiter = RejectLimiter(2, clock=lambda: now[0])
    assert [limiter.allow("2001:db8::1")[0] for _ in range(3)] == [True, True, False]
    assert limiter.allow("2001:db8::2") == (False, 2)  # same /64: same bucket
    assert limiter.allow("2001:db8:0:1::1")[0] is True  # another /64
    now[0] += 30.0  # half a minute: one token back
    assert limiter.allow("2001:db8::1")[0] is True
    assert limiter.allow("2001:db8::1")[0] is False
    assert RejectLimiter(0).allow("10.0.0.1") == (False, 0)
