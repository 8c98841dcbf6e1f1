"""MysqlSource on a real MariaDB into a real SqliteJournal: pick-up, gaps, restarts, KILL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mysql_helpers import HOSTILE, add_user, install

from callbridge.journal.base import AppendResult
from callbridge.journal.sqlite import SqliteJournal
from callbridge.mysql.source import MysqlSource, OutboxRow, decode_params, fetch_outbox_row
from callbridge.testing import wait_until

pytestmark = pytest.mark.mysql


@pytest.fixture
def conn(mariadb: Any, database: str) -> Iterator[Any]:
    connection = mariadb.connect(database)
    install(connection)
    yield connection
    connection.close()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    j = SqliteJournal(tmp_path / "journal.db")
    yield j
    j.close()


def _source(mariadb: Any, database: str, journal: Any, **kw: Any) -> MysqlSource:
    kw.setdefault("poll_interval", 0.05)
    kw.setdefault("backoff_initial", 0.05)
    kw.setdefault("backoff_max", 0.5)
    return MysqlSource(mariadb.url(database), journal, **kw)


def _ring(conn: Any, usercallid: int, userid: int, number: str = "0612345678", **kw: Any) -> None:
    values = {
        "companyid": 1,
        "usercallid": usercallid,
        "userid": userid,
        "direction": 1,
        "status": 1,
        "party_nr": number,
        **kw,
    }
    cols = ", ".join(f"`{k}`" for k in values)
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO monitor_user_calls ({cols}) VALUES ({', '.join(['%s'] * len(values))})",
            list(values.values()),
        )


def _events(journal: SqliteJournal) -> list[Any]:
    return journal.events_after(0, limit=10_000)


def _outbox_count(conn: Any) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM callbridge_outbox")
        return int(cur.fetchone()[0])


def test_events_reach_the_journal_and_rows_are_consumed(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    uid = add_user(conn, "201", email="mario@example.com")
    _ring(conn, 0x12A0, uid, party_desc="Anna|Bianchi|Acme|0|0")
    with conn.cursor() as cur:
        cur.execute("UPDATE monitor_user_calls SET status = 2")
        cur.execute("UPDATE monitor_user_calls SET status = 6")
    source = _source(mariadb, database, journal)
    assert source.poll_once() == 3
    stored = _events(journal)
    assert [s.event.ssn_event for s in stored] == [16, 18, 21]
    assert {s.source for s in stored} == {"mysql"}
    ring = stored[0]
    assert ring.event.call_id == "000012A0"
    assert ring.event.remote_number == "0612345678"
    assert ring.event.local_number == "201"
    assert ring.event.identity is not None
    assert ring.event.identity.display_name == "Anna Bianchi"
    assert ring.raw["user_email"] == "mario@example.com"
    assert ring.raw["user_name"] == "Mario Rossi"
    assert _outbox_count(conn) == 0
    assert journal.get_cursor(f"mysql:{database}") >= 3
    assert source.poll_once() == 0
    source.close()


def test_mark_mode_keeps_rows_and_does_not_repeat(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    uid = add_user(conn, "201")
    _ring(conn, 1, uid)
    source = _source(mariadb, database, journal, consume="mark", sweep_interval=0)
    assert source.poll_once() == 1
    assert source.poll_once() == 0  # the sweep skips consumed rows
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM callbridge_outbox WHERE consumed_at IS NOT NULL")
        assert cur.fetchone()[0] == 1
    assert len(_events(journal)) == 1


def test_internal_call_gets_the_colleagues_identity_and_missing_ext(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    uid = add_user(conn, "201")
    add_user(conn, "202", name="Giulia", surname="Bianchi")
    with conn.cursor() as cur:  # a row as a trigger would write it, lacking the user's ext
        cur.execute(
            "INSERT INTO callbridge_outbox (ssn_event, params) VALUES (16, JSON_OBJECT("
            "'ssn_event', '16', 'company_id', '1', 'sender_id', LPAD(HEX(%s), 8, '0'),"
            "'call_id', '00000009', 'number', '202', 'direction', '1'))",
            (uid,),
        )
    source = _source(mariadb, database, journal)
    source.poll_once()
    (stored,) = _events(journal)
    assert stored.event.ext == "201"
    assert stored.event.identity.display_name == "Giulia Bianchi"


def test_outgoing_leg_takes_the_external_id_of_monitor_calls(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    """The PBX wrote the CallReq's id on monitor_calls only: the 17 still carries it."""
    uid = add_user(conn, "201")
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO monitor_calls (companyid, callid, externalid) VALUES (1, 77, 'cb-mc-1')"
        )
    _ring(conn, 0x31, uid, direction=2, callid=77)
    _ring(conn, 0x32, uid, direction=2, callid=78, number="0611111111")  # no external id
    source = _source(mariadb, database, journal)
    assert source.poll_once() == 2
    by_call = {s.event.call_id: s.event for s in _events(journal)}
    assert by_call["00000031"].ssn_event == 17
    assert by_call["00000031"].ext_id == "cb-mc-1"
    assert by_call["00000032"].ext_id is None
    source.close()


def test_a_group_call_row_carries_the_members_extension_from_users(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    """A row whose ``ext`` is the group's number (as the PBX's own 16 has it)."""
    uid = add_user(conn, "203")
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO callbridge_outbox (ssn_event, params) VALUES (16, JSON_OBJECT("
            "'ssn_event', '16', 'company_id', '1', 'sender_id', LPAD(HEX(%s), 8, '0'),"
            "'call_id', '0000000A', 'number', '0612345678', 'ext', '600', 'group', '600'))",
            (uid,),
        )
    source = _source(mariadb, database, journal)
    source.poll_once()
    (stored,) = _events(journal)
    assert stored.event.ext == "600"  # the document's value, as sent
    assert stored.raw["user_extension"] == "203"
    source.close()


def test_malformed_rows_are_rejected_and_never_stop_the_source(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    uid = add_user(conn, "201")
    with conn.cursor() as cur:
        for params in ("not json", "[1, 2]", '{"ssn_event": "16"}', '{"a": {"b": 1}}'):
            cur.execute(
                "INSERT INTO callbridge_outbox (ssn_event, params) VALUES (16, %s)", (params,)
            )
    _ring(conn, 5, uid)
    source = _source(mariadb, database, journal)
    assert source.poll_once() == 5
    assert [s.event.ssn_event for s in _events(journal)] == [16]
    rejected = journal.list_rejected()
    assert len(rejected) == 4
    assert {r.source for r in rejected} == {"mysql"}
    assert any("call_id" in r.reason for r in rejected)
    assert _outbox_count(conn) == 0
    assert source.stats.rejected == 4


def test_a_gap_that_fills_late_is_not_lost(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    uid = add_user(conn, "201")
    slow = mariadb.connect(database)
    slow.begin()  # takes outbox id 1 but commits after id 2
    _ring(slow, 1, uid, number="111")
    _ring(conn, 2, uid, number="222")
    source = _source(mariadb, database, journal)
    assert source.poll_once() == 1
    assert source.gaps == {1}
    assert journal.get_cursor(f"mysql:{database}") == 0  # the low mark waits for the gap
    slow.commit()
    slow.close()
    assert source.poll_once() == 1
    assert source.gaps == frozenset()
    assert sorted(s.event.number for s in _events(journal)) == ["111", "222"]
    assert journal.get_cursor(f"mysql:{database}") == 2
    assert source.stats.gaps_filled == 1


def test_rolled_back_gaps_are_given_up_and_the_sweep_catches_stragglers(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    uid = add_user(conn, "201")
    now = [0.0]
    rolled, late = mariadb.connect(database), mariadb.connect(database)
    rolled.begin()
    _ring(rolled, 1, uid, number="111")  # id 1: rolled back, never comes
    late.begin()
    _ring(late, 2, uid, number="222")  # id 2: commits after the grace period
    _ring(conn, 3, uid, number="333")
    source = _source(
        mariadb, database, journal, gap_grace=30, sweep_interval=60, clock=lambda: now[0]
    )
    source.poll_once()
    assert source.gaps == {1, 2}
    rolled.rollback()
    now[0] = 31.0
    source.poll_once()
    assert source.gaps == frozenset()
    assert source.stats.gaps_given_up == 2
    late.commit()
    now[0] = 61.0
    assert source.poll_once() == 1  # the sweep
    assert sorted(s.event.number for s in _events(journal)) == ["222", "333"]
    assert source.stats.swept == 1
    rolled.close()
    late.close()


def test_restart_resumes_from_the_durable_mark_and_rewatches_gaps(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    uid = add_user(conn, "201")
    slow = mariadb.connect(database)
    slow.begin()
    _ring(slow, 1, uid, number="111")
    _ring(conn, 2, uid, number="222")
    first = _source(mariadb, database, journal)
    first.poll_once()
    first.close()  # the process dies with gap 1 open
    slow.commit()
    slow.close()
    _ring(conn, 3, uid, number="333")
    second = _source(mariadb, database, journal)
    second.poll_once()
    assert sorted(s.event.number for s in _events(journal)) == ["111", "222", "333"]
    assert second.stats.duplicates == 0


class _CrashAfterAppend:
    """A journal that 'crashes' right after the n-th durable append (before the row is deleted)."""

    def __init__(self, inner: SqliteJournal, n: int) -> None:
        self.inner, self.n = inner, n

    def append_event(self, event: Any, **kw: Any) -> AppendResult:
        result = self.inner.append_event(event, **kw)
        self.n -= 1
        if self.n == 0:
            raise SystemExit("crash")
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_crash_between_journal_and_delete_gives_no_duplicate(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    uid = add_user(conn, "201")
    for i in range(5):
        _ring(conn, 10 + i, uid, number=f"55{i}")
    crashing = _source(mariadb, database, _CrashAfterAppend(journal, 3))
    with pytest.raises(SystemExit):
        crashing.poll_once()
    crashing.close()
    assert _outbox_count(conn) == 3  # rows 3-5 remain; row 3 is already journaled
    restarted = _source(mariadb, database, journal)
    restarted.poll_once()
    assert sorted(s.event.number for s in _events(journal)) == [f"55{i}" for i in range(5)]
    assert restarted.stats.duplicates == 1  # the journal dropped the one repeat
    assert _outbox_count(conn) == 0


def test_stop_midway_and_killed_connection_lose_nothing(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    uid = add_user(conn, "201")
    total = 120
    writer_conn = mariadb.connect(database)

    def write(numbers: range) -> threading.Thread:
        def run() -> None:
            for i in numbers:
                _ring(writer_conn, 1000 + i, uid, number=f"{i:04d}")

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    writer = write(range(total // 2))
    stop = threading.Event()
    first = _source(mariadb, database, journal, batch_size=7)
    thread = first.start(stop)
    wait_until(lambda: len(_events(journal)) >= 10, "first events")
    stop.set()  # stop mid-way
    thread.join(timeout=30)
    assert not thread.is_alive()
    writer.join(timeout=60)

    stop2 = threading.Event()
    second = _source(mariadb, database, journal, batch_size=7)
    thread2 = second.start(stop2)
    wait_until(lambda: second.connection_id is not None, "connection")
    writer = write(range(total // 2, total))  # the PBX keeps writing while we KILL
    with mariadb.connect().cursor() as cur:
        cur.execute(f"KILL {second.connection_id}")
    wait_until(lambda: second.stats.reconnects >= 1, "a reconnect", timeout=60)
    writer.join(timeout=60)
    writer_conn.close()
    wait_until(lambda: len(_events(journal)) >= total, "all events", timeout=60)
    stop2.set()
    thread2.join(timeout=30)
    numbers = [s.event.number for s in _events(journal)]
    assert sorted(numbers) == [f"{i:04d}" for i in range(total)]
    assert first.stats.duplicates + second.stats.duplicates == 0
    assert _outbox_count(conn) == 0


def test_connection_refused_is_retried_without_crashing(journal: SqliteJournal) -> None:
    source = MysqlSource(
        "mysql://nobody:secret-pw@127.0.0.1:1/db", journal, backoff_initial=0.01, backoff_max=0.02
    )
    stop = threading.Event()
    thread = source.start(stop)
    wait_until(lambda: len(source.stats.errors) >= 2, "retries")
    stop.set()
    thread.join(timeout=10)
    assert "secret-pw" not in repr(source)
    assert all("secret-pw" not in e for e in source.stats.errors)


def test_hostile_values_reach_the_journal_exactly(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    uid = add_user(conn, "201")
    tag = uuid.uuid4().hex[:8]
    values = [v.format(tag=tag) for v in HOSTILE]
    for i, value in enumerate(values):
        _ring(conn, 300 + i, uid, number=value[:20], party_desc=value, externalid=value[:40])
    _source(mariadb, database, journal).poll_once()
    stored = _events(journal)
    assert [s.event.identity_raw for s in stored] == [v.strip() for v in values]
    assert [s.raw["identity"] for s in stored] == values
    assert [s.raw["number"] for s in stored] == [v[:20] for v in values]
    assert not list(Path("/tmp").glob(f"cb_pwned_{tag}*"))


def test_fetch_outbox_row_sees_a_row_once_committed(mariadb: Any, database: str, conn: Any) -> None:
    uid = add_user(conn, "201")
    pbx = mariadb.connect(database)
    pbx.begin()
    _ring(pbx, 7, uid)
    with pbx.cursor() as cur:
        cur.execute("SELECT MAX(id) FROM callbridge_outbox")
        outbox_id = int(cur.fetchone()[0])
    reader = mariadb.connect(database)
    assert fetch_outbox_row(reader, outbox_id) is None  # inside the PBX's transaction
    timer = threading.Timer(0.3, pbx.commit)
    timer.start()
    row = fetch_outbox_row(reader, outbox_id, wait=30)
    timer.join()
    assert row is not None
    assert decode_params(row)["call_id"] == "00000007"
    with pytest.raises(ValueError):
        fetch_outbox_row(reader, 0)
    pbx.close()
    reader.close()


def test_decode_params() -> None:
    row = OutboxRow(1, 16, '{"a": null, "b": 5, "c": true, "d": "x"}')
    assert decode_params(row) == {"b": "5", "c": "1", "d": "x", "ssn_event": "16"}


def test_bad_consume_mode(journal: SqliteJournal) -> None:
    with pytest.raises(ValueError):
        MysqlSource("mysql://u@h/db", journal, consume="keep")  # type: ignore[arg-type]


def test_events_carry_the_rows_creation_time_in_utc(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    """received_at is when the PBX wrote the row, in UTC, whatever the server's time zone."""
    with conn.cursor() as cur:  # a server whose zone is not UTC, for the PBX and for us
        cur.execute("SET GLOBAL time_zone = '+05:00'")
        cur.execute("SET SESSION time_zone = '+05:00'")
    try:
        uid = add_user(conn, "201")
        _ring(conn, 4242, uid)
        with conn.cursor() as cur:  # written two hours ago, in the server's zone
            cur.execute("UPDATE callbridge_outbox SET created_at = NOW(6) - INTERVAL 2 HOUR")
        source = _source(mariadb, database, journal)
        try:
            assert source.poll_once() == 1
        finally:
            source.close()
    finally:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL time_zone = SYSTEM")
    age = datetime.now(UTC) - _events(journal)[0].received_at
    assert timedelta(hours=1, minutes=55) < age < timedelta(hours=2, minutes=5)
