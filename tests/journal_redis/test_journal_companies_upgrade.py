"""A journal written before companies (SQLite events v3 / state s4, Redis layout 1) is
upgraded on open: everything in it belongs to ``default`` and can be exported and purged."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from redis_support import RedisServer

from callbridge.journal.migrations import EVENTS_MIGRATIONS, STATE_MIGRATIONS, migrate
from callbridge.journal.redis import SCHEMA_VERSION, RedisJournal
from callbridge.journal.sqlite import SqliteJournal, state_path_for
from callbridge.voispeed.events import parse_event

PARAMS = {"ssn_event": "16", "call_id": "00000001", "number": "0612", "ext": "201"}


def _kinds(lines: list[str]) -> list[str]:
    return sorted(json.loads(line)["record"] for line in lines)


def test_an_sqlite_journal_from_before_companies_is_all_default(tmp_path: Path) -> None:
    events_path = tmp_path / "journal.sqlite3"
    for path, steps, target, rows in (
        (
            events_path,
            EVENTS_MIGRATIONS,
            3,
            [
                "INSERT INTO events (received_at, source, dedup_key, raw, kind, parsed) VALUES "
                f"(1, 'http', 'k1', '{json.dumps(PARAMS)}', 'Nope', '{{}}')",
                "INSERT INTO rejected (received_at, source, reason, raw) "
                "VALUES (1, 'http', 'r', 'x')",
            ],
        ),
        (
            state_path_for(events_path),
            STATE_MIGRATIONS,
            4,
            [
                "INSERT INTO calls (key, state, started_at, updated_at, data) VALUES "
                "('1:A', 'ended', 1, 1, '{}')",
                "INSERT INTO deliveries (call_key, plugin, action, state, created_at, payload) "
                "VALUES ('1:A', 'p', 'log_call', 'dead', 1, '{}')",
                "INSERT INTO agent_events (extension, at, kind, data) "
                "VALUES ('201', 1, 'pop', '{}')",
            ],
        ),
    ):
        conn = sqlite3.connect(path, isolation_level=None)
        assert migrate(conn, steps, target=target) == target
        for statement in [*rows, "INSERT INTO meta (key, value) VALUES ('journal_id', 'j1')"]:
            conn.execute(statement)
        conn.close()

    journal = SqliteJournal(events_path)
    try:
        assert journal.companies() == ["default"]
        lines = list(journal.export_company("default"))
        # The rejected request's company is not known: it is nobody's.
        assert _kinds(lines) == ["agent_event", "call", "delivery", "event"]
        assert len(journal.agent_events_after("201", 0)) == 1
        counts = journal.purge_company("default")
        assert (counts["event"], counts["call"], counts["delivery"]) == (1, 1, 1)
        assert len(journal.list_rejected()) == 1
    finally:
        journal.close()


def test_a_redis_journal_of_layout_1_is_indexed_under_default(redis_server: RedisServer) -> None:
    url = redis_server.unique_url()
    prefix = url.rpartition("prefix=")[2]
    journal = RedisJournal(url)
    journal.append_event(parse_event(PARAMS), raw=PARAMS)
    journal.enqueue_delivery(call_key="1:A", plugin="p", action="log_call", payload={})
    journal.append_agent_event("201", "pop", {})
    journal.close()
    # Back to what layout 1 had: no company indexes, no company fields.
    client = redis_server.client()
    for key in client.scan_iter(match=f"{prefix}:co:*"):
        client.delete(key)
    client.delete(f"{prefix}:companies")
    for key in client.scan_iter(match=f"{prefix}:delivery:*"):
        client.hdel(key, "company")
    client.set(f"{prefix}:meta:schema", 1)
    # Meanwhile another process of the new layout already wrote a company's data: the
    # upgrade must not take it for default's.
    writer = RedisJournal(url)
    client.set(f"{prefix}:meta:schema", 1)  # the writer saw layout 1 too and upgraded
    for key in client.scan_iter(match=f"{prefix}:co:*"):
        client.delete(key)
    client.delete(f"{prefix}:companies")
    acme = {**PARAMS, "call_id": "00000002"}
    writer.append_event(parse_event(acme), raw=acme, company="acme")
    writer.enqueue_delivery(
        call_key="1:B", plugin="p", action="log_call", payload={}, company="acme"
    )
    writer.append_agent_event("201", "pop", {}, company="acme")
    writer.close()

    upgraded = RedisJournal(url)
    try:
        assert client.get(f"{prefix}:meta:schema") == str(SCHEMA_VERSION)
        assert upgraded.companies() == ["acme", "default"]
        assert _kinds(list(upgraded.export_company("default"))) == [
            "agent_event",
            "delivery",
            "event",
        ]
        assert _kinds(list(upgraded.export_company("acme"))) == [
            "agent_event",
            "delivery",
            "event",
        ]
        upgraded.purge_company("default")
        assert [d.call_key for d in upgraded.list_deliveries()] == ["1:B"]
        assert [e.event.call_id for e in upgraded.events_after(0)] == ["00000002"]
    finally:
        upgraded.close()
        client.close()
