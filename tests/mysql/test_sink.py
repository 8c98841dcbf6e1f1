"""The simulator writes monitor rows through MysqlSink; triggers fire; the source journals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mysql_helpers import install

from callbridge.journal.sqlite import SqliteJournal
from callbridge.mysql.sink import MysqlSink, SinkUser
from callbridge.mysql.source import MysqlSource
from callbridge.sim.engine import CallEngine
from callbridge.sim.model import default_directory
from callbridge.testing import wait_until

pytestmark = pytest.mark.mysql


@pytest.fixture
def setup(mariadb: Any, database: str, tmp_path: Path) -> Iterator[tuple[Any, ...]]:
    conn = mariadb.connect(database)
    install(conn)
    directory = default_directory()
    sink = MysqlSink(mariadb.url(database))
    sink.load_users(
        SinkUser(
            u.id,
            u.extension,
            u.company_id,
            u.login,
            u.name,
            u.surname,
            f"{u.name.lower()}@acme.test",
        )
        for u in directory.users
    )
    engine = CallEngine(directory, sink)
    journal = SqliteJournal(tmp_path / "j.db")
    source = MysqlSource(mariadb.url(database), journal, poll_interval=0.05)
    yield engine, sink, source, journal, conn
    source.close()
    sink.close()
    journal.close()
    conn.close()


def _codes(journal: SqliteJournal) -> list[tuple[int, str]]:
    return [(s.event.ssn_event, s.event.call_id) for s in journal.events_after(0)]


def test_simulated_calls_flow_through_tables_triggers_and_source(setup: tuple[Any, ...]) -> None:
    engine, sink, source, journal, _ = setup
    engine.login_all()
    answered = engine.incoming_call("+390612345678", "201", caller_name="Anna Bianchi")
    engine.answer(answered)
    engine.hangup(answered, by="remote")
    missed = engine.incoming_call("+390698765432", "202")
    engine.reject(missed)
    out = engine.outgoing_call("203", "+39021234567", ext_id="cb-0123456789abcdef")
    engine.answer(out)
    engine.hangup(out)
    assert sink.failures == []
    source.poll_once()
    events = journal.events_after(0)
    logins = [s for s in events if s.event.ssn_event == 1]
    assert len(logins) == len(engine.directory.devices)
    calls = [s for s in events if s.event.ssn_event >= 16]
    by_call: dict[str, list[int]] = {}
    for s in calls:
        by_call.setdefault(s.event.call_id, []).append(s.event.ssn_event)
    # 20 (remote hang-up) comes back as 21: the tables do not say who hung up
    assert sorted(by_call.values()) == [[16, 18, 21], [16, 19], [17, 18, 21]]
    ring = next(s for s in calls if s.event.ssn_event == 16 and s.event.ext == "201")
    assert ring.event.number == "+390612345678"
    assert ring.event.identity.display_name == "Anna Bianchi"
    assert ring.raw["user_email"] == "mario@acme.test"
    outgoing = next(s for s in calls if s.event.ssn_event == 17)
    assert outgoing.event.ext_id == "cb-0123456789abcdef"
    assert (outgoing.event.number, outgoing.event.ext) == ("+39021234567", "203")


def test_device_logout_and_a_source_thread(setup: tuple[Any, ...]) -> None:
    import threading

    engine, _sink, source, journal, _ = setup
    stop = threading.Event()
    thread = source.start(stop)
    device = engine.directory.devices[0]
    engine.device_login(device.wire_id)
    engine.device_logout(device.wire_id)
    wait_until(lambda: len(journal.events_after(0)) >= 2, "device events")
    stop.set()
    thread.join(timeout=30)
    first, second = (s.event for s in journal.events_after(0))
    assert (first.ssn_event, second.ssn_event) == (1, 2)
    assert first.device_id == device.wire_id
    assert first.number == "201"


def test_sink_never_raises(tmp_path: Path) -> None:
    sink = MysqlSink("mysql://u:pw@127.0.0.1:1/db")
    sink.emit({"ssn_event": "16", "call_id": "1"})
    assert len(sink.failures) == 1
    assert "pw@" not in repr(sink)
