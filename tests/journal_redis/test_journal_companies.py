"""The journal keeps each company's data apart: export and purge one company, on both
backends (the ``backend`` fixture runs each test against SQLite and Redis alike)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from redis_support import Backend

from callbridge.journal import Journal
from callbridge.journal.redis import RedisJournal
from callbridge.journal.tenancy import (
    DEFAULT_COMPANY,
    RECORD_KINDS,
    company_of,
    set_company_resolver,
)
from callbridge.models import Call, CallState, Direction, Originate, WrapUp
from callbridge.voispeed.events import parse_event

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _params(company_id: str, call_id: str, ssn: int = 16) -> dict[str, str]:
    return {
        "ssn_event": str(ssn),
        "call_id": call_id,
        "number": "0612345678",
        "ext": "201",
        "company_id": company_id,
        "token": "s3cret-ingress-token",
    }


def _call(key: str, company_id: str) -> Call:
    return Call(
        key=key,
        company_id=company_id,
        user_call_id=key.split(":")[1],
        direction=Direction.INBOUND,
        state=CallState.ENDED,
        extension="201",
        ring_at=T0,
    )


def _fill(journal: Journal, company: str, company_id: str, n: int = 3) -> None:
    """Every kind of record for ``company``: events, a rejected request, calls with
    deliveries, a wrap-up and a recording, an originate and agent messages (extension 201
    in each)."""
    for i in range(n):
        params = _params(company_id, f"{company_id}{i:07d}")
        journal.append_event(parse_event(params), raw=params, company=company)
        key = f"{company_id}:{company_id}{i:07d}"
        journal.save_call(_call(key, company_id), settled=True, company=company)
        journal.enqueue_delivery(call_key=key, plugin="directory", action="log_call", payload={})
        journal.append_agent_event("201", "pop", {"call": key}, company=company)
    journal.record_rejected(raw="ssn_event=99", reason="bad", company=company)
    journal.save_wrapup(
        WrapUp(call_key=f"{company_id}:{company_id}0000000", revision=1, saved_at=T0)
    )
    journal.save_recording(f"{company_id}:{company_id}0000001", f"rec-{company}.wav", T0)
    journal.create_originate(
        Originate(external_id=f"cb-{company}", user="u", number="1", created_at=T0),
        company=company,
    )


def _export(journal: Journal, company: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in journal.export_company(company)]


def _kinds(records: list[dict[str, object]]) -> dict[str, int]:
    counts = dict.fromkeys(RECORD_KINDS, 0)
    for record in records:
        counts[str(record["record"])] += 1
    return counts


FULL = {
    "event": 3,
    "rejected": 1,
    "call": 3,
    "originate": 1,
    "wrapup": 1,
    "recording": 1,
    "delivery": 3,
    "agent_event": 3,
}


def test_export_has_every_kind_of_one_company_and_no_secret(backend: Backend) -> None:
    journal = backend.open()
    _fill(journal, "acme", "1")
    _fill(journal, "globex", "2")
    assert journal.companies() == ["acme", "globex"]
    assert journal.holds_company("globex") and not journal.holds_company("initech")
    records = _export(journal, "acme")
    assert _kinds(records) == FULL
    assert {r["company"] for r in records} == {"acme"}
    # Deliveries and wrap-ups took their call's company without being told.
    calls = {r["data"]["call"]["key"] for r in records if r["record"] == "call"}  # type: ignore[index]
    assert calls == {"1:10000000", "1:10000001", "1:10000002"}
    assert {r["data"]["call_key"] for r in records if r["record"] == "delivery"} == calls  # type: ignore[index]
    text = "\n".join(journal.export_company("acme"))
    assert "s3cret-ingress-token" not in text
    assert "2:2" not in text  # nothing of globex's
    assert _export(journal, "nobody") == []


def test_purge_deletes_one_company_and_leaves_the_other_untouched(backend: Backend) -> None:
    journal = backend.open()
    _fill(journal, "globex", "2")
    _fill(journal, "acme", "1")  # acme's events are the newest
    before = list(journal.export_company("globex"))
    last = journal.last_seq()

    assert journal.purge_company("acme", dry_run=True) == FULL
    assert _kinds(_export(journal, "acme")) == FULL  # a dry run deletes nothing
    assert journal.purge_company("acme") == FULL

    assert _export(journal, "acme") == []
    assert list(journal.export_company("globex")) == before
    assert journal.companies() == ["globex"]
    assert not journal.holds_company("acme")
    assert journal.get_call("1:10000000") is None
    assert journal.get_call("2:20000000") is not None
    assert journal.agent_events_after("201", 0, company="acme") == []
    assert len(journal.agent_events_after("201", 0, company="globex")) == 3
    assert [d.call_key[0] for d in journal.list_deliveries()] == ["2", "2", "2"]
    assert {(p, s) for p, s, _ in journal.delivery_counts()} == {("directory", "pending")}
    assert [e.event.company_id for e in journal.events_after(0)] == ["2", "2", "2"]
    # A purged event's sequence number is never given to another, and the journal goes on
    # working for everyone.
    params = _params("1", "10000000")
    again = journal.append_event(parse_event(params), raw=params, company="acme")
    assert again.seq > last and not again.duplicate
    assert journal.purge_company("acme") == {**dict.fromkeys(RECORD_KINDS, 0), "event": 1}
    journal.close()
    reopened = backend.open()
    assert list(reopened.export_company("globex")) == before


def test_the_company_comes_from_company_of_when_not_given(backend: Backend) -> None:
    journal = backend.open()
    params = _params("7", "70000001")
    journal.append_event(parse_event(params), raw=params)
    journal.save_call(_call("7:70000001", "7"))
    journal.append_agent_event("201", "pop", {})
    assert journal.companies() == [DEFAULT_COMPANY]
    assert _kinds(_export(journal, DEFAULT_COMPANY))["event"] == 1

    names = {"8": "initech"}
    set_company_resolver(lambda company_id, pbx: names.get(company_id or ""))
    try:
        params = _params("8", "80000001")
        journal.append_event(parse_event(params), raw=params)
        journal.save_call(_call("8:80000001", "8"))
        journal.enqueue_delivery(call_key="8:80000001", plugin="p", action="log_call", payload={})
    finally:
        set_company_resolver(None)
    assert _kinds(_export(journal, "initech")) == {
        **dict.fromkeys(RECORD_KINDS, 0),
        "event": 1,
        "call": 1,
        "delivery": 1,
    }


def test_an_agents_stream_is_per_company(journal: Journal) -> None:
    journal.append_agent_event("201", "pop", {"who": "acme"}, company="acme")
    journal.append_agent_event("201", "pop", {"who": "default"})
    assert [e.data for e in journal.agent_events_after("201", 0, company="acme")] == [
        {"who": "acme"}
    ]
    assert [e.data for e in journal.agent_events_after("201", 0)] == [{"who": "default"}]
    # An agent's stream key (``201@acme``) names the company too.
    journal.append_agent_event("201@acme", "pop", {"who": "acme again"})
    replay = journal.agent_events_after("201@acme", 0)
    assert [e.data["who"] for e in replay] == ["acme", "acme again"]
    assert {e.extension for e in replay} == {"201@acme"}
    assert [e.data["who"] for e in journal.agent_events_after("201", 0, company="acme")] == [
        "acme",
        "acme again",
    ]


def test_prune_forgets_pruned_records_in_the_company_export(backend: Backend) -> None:
    journal = backend.open()
    _fill(journal, "acme", "1")
    journal.set_cursor("dispatcher", journal.last_seq())
    for delivery in journal.list_deliveries():
        journal.complete_delivery(delivery.id, None)
    journal.prune(datetime.now(UTC) + timedelta(days=1))
    kinds = _kinds(_export(journal, "acme"))
    # The newest event is kept (SQLite); the rest is gone, and so are the company's
    # index entries of it (Redis).
    assert kinds["event"] <= 1
    assert {k: n for k, n in kinds.items() if k != "event"} == {
        k: 0 for k in RECORD_KINDS if k != "event"
    }
    if isinstance(journal, RedisJournal):  # the indexes do not keep what was pruned
        client, key = journal._redis, journal._k
        sets = ("calls", "originates", "wrapups", "recordings", "deliveries")
        assert [client.scard(key("co", "acme", name)) for name in sets] == [0] * 5
        assert client.zcard(key("co", "acme", "rejected")) == 0
        assert client.zcard(key("co", "acme", "events")) <= 1


def test_company_of_prefers_a_name_and_falls_back_to_default() -> None:
    class Named:
        company = "acme"
        company_id = "1"

    class Numbered:
        company_id = "1"

    assert company_of(Named()) == "acme"
    assert company_of(Numbered()) == DEFAULT_COMPANY
    assert company_of(None) == DEFAULT_COMPANY


@pytest.fixture(autouse=True)
def _no_resolver() -> Iterator[None]:
    yield
    set_company_resolver(None)
