"""Whatever happens to callbridge, curl, the UDF or the data, the PBX's own writes succeed, fast.

On the real MariaDB; the sys_exec tests load our own small UDF (``udf/sys_exec.c``: a real
``system()``, so a real shell and a real curl run), compiled by the session fixture.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from click.testing import CliRunner
from mysql_helpers import add_user, install, outbox

from callbridge.cli import main
from callbridge.journal.sqlite import SqliteJournal
from callbridge.mysql import triggers
from callbridge.mysql.source import MysqlSource
from callbridge.testing import FakeAnswer, FakeHttpService, FakeRequest, wait_until

pytestmark = pytest.mark.mysql

TOKEN = "Tok_en-" + uuid.uuid4().hex
_SYS_EXEC = ("mysql", "triggers", "--mode", "sys_exec")


@pytest.fixture
def conn(mariadb: Any, database: str) -> Iterator[Any]:
    connection = mariadb.connect(database)
    yield connection
    connection.close()


def _errors(conn: Any) -> dict[tuple[str, int], int]:
    with conn.cursor() as cur:
        cur.execute("SELECT `where`, `errno`, `count` FROM callbridge_errors")
        return {(str(w), int(n)): int(c) for w, n, c in cur.fetchall()}


def _ring(conn: Any, usercallid: int, uid: int = 1, **extra: Any) -> None:
    values = {
        "companyid": 1,
        "usercallid": usercallid,
        "userid": uid,
        "direction": 1,
        "status": 1,
        "party_nr": "0612345678",
        **extra,
    }
    cols = ", ".join(f"`{k}`" for k in values)
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO monitor_user_calls ({cols}) VALUES ({', '.join(['%s'] * len(values))})",
            list(values.values()),
        )


def test_a_dropped_outbox_never_fails_the_pbx_write_and_is_counted(conn: Any) -> None:
    install(conn)
    with conn.cursor() as cur:
        cur.execute("DROP TABLE callbridge_outbox")
    _ring(conn, 1)
    _ring(conn, 2)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM monitor_user_calls")
        assert cur.fetchone()[0] == 2  # the PBX's rows are written
    assert _errors(conn) == {("callbridge_emit", 1146): 2}  # 1146: table doesn't exist


def test_a_dropped_procedure_or_errors_table_is_still_harmless(conn: Any) -> None:
    install(conn)
    with conn.cursor() as cur:
        cur.execute("DROP PROCEDURE callbridge_user_call")
    _ring(conn, 1)
    assert _errors(conn) == {("callbridge_muc_ai", 1305): 1}  # 1305: procedure doesn't exist
    with conn.cursor() as cur:
        cur.execute("DROP TABLE callbridge_errors")
        cur.execute("DROP TABLE callbridge_outbox")
        cur.execute("INSERT INTO monitor_devices (companyid, deviceid, userid) VALUES (1, 5, 1)")
        cur.execute("SELECT COUNT(*) FROM monitor_devices")
        assert cur.fetchone()[0] == 1


@pytest.mark.parametrize(
    "pbx_mode",
    ["STRICT_ALL_TABLES,ANSI_QUOTES,NO_BACKSLASH_ESCAPES,ONLY_FULL_GROUP_BY", ""],
)
def test_wide_pbx_columns_under_any_sql_mode(conn: Any, pbx_mode: str) -> None:
    """A PBX whose columns are wider than the document's: its row and our event both arrive."""
    with conn.cursor() as cur:  # the installer's session is strict, as MariaDB's default is
        cur.execute("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO'")
    install(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT @@SESSION.sql_mode")
        assert "STRICT_TRANS_TABLES" in cur.fetchone()[0]  # the installer's mode is put back
        cur.execute(
            "ALTER TABLE monitor_user_calls MODIFY party_desc VARCHAR(400),"
            " MODIFY party_nr VARCHAR(64), MODIFY `group` TEXT, MODIFY usercallid BIGINT UNSIGNED"
        )
        cur.execute("ALTER TABLE monitor_devices MODIFY descript VARCHAR(300)")
        cur.execute(f"SET SESSION sql_mode = '{pbx_mode}'")
    uid = add_user(conn, "201")
    description = "Anna " + "B" * 295  # 300 characters
    _ring(
        conn,
        2**40 + 7,
        uid,
        party_desc=description,
        party_nr="+39" + "0" * 40,
        group="g" * 5000,
    )
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO monitor_devices (companyid, deviceid, userid, descript)"
            " VALUES (1, 9, %s, %s)",
            (uid, "D" * 300),
        )
        cur.execute("SELECT party_desc FROM monitor_user_calls")
        assert cur.fetchone()[0] == description
    rows = outbox(conn)
    assert [r[1] for r in rows] == [16, 1]
    ring, login = rows[0][2], rows[1][2]
    assert ring["identity"] == description
    assert ring["number"] == "+39" + "0" * 40
    assert ring["group"] == "g" * triggers.VALUE_LIMIT  # cut, never an error
    assert ring["call_id"] == "10000000007"  # whole: the parser refuses it, never a wrong id
    assert login["device_name"] == "D" * 300
    assert _errors(conn) == {}


def test_hang_ups_from_the_tables_are_marked_unknown(conn: Any) -> None:
    install(conn)
    uid = add_user(conn, "201")
    _ring(conn, 3, uid)
    with conn.cursor() as cur:
        cur.execute("UPDATE monitor_user_calls SET status = 2")
        cur.execute("UPDATE monitor_user_calls SET status = 6")
    rows = outbox(conn)
    assert [r[1] for r in rows] == [16, 18, 21]
    assert [r[2]["cb_hangup_unknown"] for r in rows] == [None, None, "1"]


# -- sys_exec mode with a real UDF, shell and curl ----------------------------------------------


class _Recorder(FakeHttpService):
    """Answers like the ingress would (202 nudged) and records each request's target."""

    @property
    def seen(self) -> list[str]:
        with self.lock:
            return [r.target.partition(" ")[2] for r in self.requests]

    def route(self, request: FakeRequest) -> FakeAnswer:
        return FakeAnswer(202, b"nudged\n", content_type="text/plain")


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    with _Recorder() as server:
        yield server


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A port whose listener accepts connections (the kernel does) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}/pbx/events"


def _timed_ring(conn: Any, usercallid: int) -> float:
    started = time.perf_counter()
    _ring(conn, usercallid)
    return time.perf_counter() - started


def test_apply_refuses_sys_exec_without_the_udf(mariadb: Any, database: str) -> None:
    url = mariadb.url(database)
    assert CliRunner().invoke(main, ["mysql", "schema", "--apply", "--dsn", url]).exit_code == 0
    result = CliRunner().invoke(
        main,
        [*_SYS_EXEC, "--url", _url(9), "--token", TOKEN, "--apply", "--dsn", url],
    )
    assert result.exit_code == 2
    assert "sys_exec UDF is not installed" in result.output
    assert TOKEN not in result.output
    with mariadb.connect(database).cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
            (database,),
        )
        assert cur.fetchone()[0] == 0


def test_sys_exec_runs_a_detached_curl_with_only_the_row_id(
    mariadb: Any, conn: Any, sys_exec_udf: None, recorder: _Recorder
) -> None:
    url, dsn = _url(recorder.port), mariadb.url(conn.db.decode())
    assert CliRunner().invoke(main, ["mysql", "schema", "--apply", "--dsn", dsn]).exit_code == 0
    applied = CliRunner().invoke(
        main,
        [*_SYS_EXEC, "--url", url, "--token", TOKEN, "--apply", "--dsn", dsn],
        catch_exceptions=False,
    )
    assert applied.exit_code == 0, applied.output  # the UDF is there: installed
    log_before = mariadb.log.read_text(errors="replace")
    tag = uuid.uuid4().hex[:8]
    hostile = f"x$(touch /tmp/cb_pwned_{tag})`touch /tmp/cb_pwned_{tag}`"
    for i in range(3):  # one nudge per 0.5 s and PBX session: the first of these three
        _ring(conn, 10 + i, party_desc=hostile)
    time.sleep(triggers.NUDGE_EVERY + 0.1)
    _ring(conn, 13, party_desc=hostile)  # and this one
    ids = [r[0] for r in outbox(conn)]
    assert len(ids) == 4
    seen = wait_until(lambda: len(recorder.seen) == 2 and recorder.seen, "two curl requests")
    assert sorted(seen) == [f"/pbx/events?outbox_id={i}&token={TOKEN}" for i in (ids[0], ids[3])]
    assert not list(Path("/tmp").glob(f"cb_pwned_{tag}*"))
    assert _errors(conn) == {}
    time.sleep(0.5)
    # curl's output (and its errors) go to the null device, not the server's error log.
    assert mariadb.log.read_text(errors="replace") == log_before


def test_a_hung_callbridge_does_not_stall_the_pbx_write(
    conn: Any, sys_exec_udf: None, hung_port: int
) -> None:
    install(conn, "sys_exec", url=_url(hung_port), token=TOKEN)
    took = [_timed_ring(conn, 20 + i) for i in range(5)]
    # curl gives up after 3 s; the write used to wait for it. Detached, it waits for a fork.
    assert max(took) < 1.0, took
    with conn.cursor() as cur:  # an UPDATE over three rows makes three events, still no wait
        started = time.perf_counter()
        cur.execute("UPDATE monitor_user_calls SET status = 6 WHERE usercallid IN (20, 21, 22)")
        assert time.perf_counter() - started < 1.0
    assert len(outbox(conn)) == 8
    assert _errors(conn) == {}


def test_a_udf_dropped_later_leaves_the_pbx_writes_and_the_outbox_working(
    mariadb: Any, conn: Any, sys_exec_udf: None, recorder: _Recorder
) -> None:
    install(conn, "sys_exec", url=_url(recorder.port), token=TOKEN)
    with mariadb.connect().cursor() as cur:
        cur.execute("DROP FUNCTION sys_exec")  # an upgrade removed it
    _ring(conn, 30)
    time.sleep(triggers.NUDGE_EVERY + 0.1)  # the next write nudges again
    _ring(conn, 31)
    assert [r[1] for r in outbox(conn)] == [16, 16]  # the events are in the outbox anyway
    assert _errors(conn) == {("callbridge_emit", 1305): 2}
    report = CliRunner().invoke(main, ["mysql", "check", "--dsn", mariadb.url(conn.db.decode())])
    assert report.exit_code == 1
    assert "callbridge_emit errno 1305: 2x" in report.output
    assert "swallowed 2 errors" in report.output


def test_a_nudge_makes_the_source_read_the_row_soon_after_the_commit(
    mariadb: Any, database: str, tmp_path: Path
) -> None:
    """The nudge comes before the commit; the source still has the row well before its poll."""
    conn = mariadb.connect(database)
    install(conn)
    journal = SqliteJournal(tmp_path / "journal.db")
    source = MysqlSource(mariadb.url(database), journal, poll_interval=30.0)
    stop = threading.Event()
    thread = source.start(stop)
    try:
        wait_until(lambda: source.connection_id is not None, "the source connected")
        time.sleep(0.2)  # the source is asleep for its 30 s interval now
        pbx = mariadb.connect(database, autocommit=False)
        _ring(pbx, 40)  # in the PBX's open transaction: the trigger's curl arrives now
        source.nudge()
        time.sleep(0.3)  # the PBX commits a little later
        pbx.commit()
        committed = time.monotonic()
        wait_until(lambda: source.stats.events == 1, "the event journaled", timeout=10)
        assert time.monotonic() - committed < 1.5  # not the 30 s interval
        pbx.close()
    finally:
        stop.set()
        thread.join(10)
        journal.close()
        conn.close()


def test_pbx_write_fails_only_for_its_own_reasons(conn: Any) -> None:
    """The handler swallows our errors, not the PBX's: its own bad statement still fails."""
    install(conn)
    with conn.cursor() as cur, pytest.raises(pymysql.err.MySQLError):
        cur.execute("INSERT INTO monitor_user_calls (no_such_column) VALUES (1)")


def test_windows_servers_get_start_b_and_a_curl_path_with_backslashes(conn: Any) -> None:
    before, after = triggers.nudge_command(
        _url(8765), TOKEN, server_os="windows", curl="C:\\Program Files (x86)\\curl\\curl.exe"
    )
    assert before == (
        'start "" /b "C:\\Program Files (x86)\\curl\\curl.exe" -s -g -m 3 -o NUL'
        f' "{_url(8765)}?outbox_id='
    )
    assert after == f'&token={TOKEN}" >NUL 2>&1'
    statements = triggers.trigger_statements(
        "sys_exec", url=_url(8765), token=TOKEN, server_os="windows", curl="C:\\curl\\curl.exe"
    )
    emit = next(s for s in statements if "PROCEDURE `callbridge_emit`" in s)
    assert "\\" not in emit  # backslashes are CHAR(92): their meaning in a literal varies
    with conn.cursor() as cur:  # the server builds exactly the command
        cur.execute(
            emit.split("SET v_rc = sys_exec(", 1)[1]
            .split("));", 1)[0]
            .join(["SELECT ", ")"])
            .replace("LAST_INSERT_ID()", "42")
        )
        assert cur.fetchone()[0] == (
            f'start "" /b "C:\\curl\\curl.exe" -s -g -m 3 -o NUL "{_url(8765)}?outbox_id=42'
            f'&token={TOKEN}" >NUL 2>&1'
        )


@pytest.mark.parametrize("curl", ['C:\\a"b', "curl;id", "curl$(id)", "c%PATH%", "a&b", ""])
def test_unsafe_curl_paths_are_refused(curl: str) -> None:
    with pytest.raises(triggers.UnsafeValue):
        triggers.trigger_statements("sys_exec", url=_url(1), token=TOKEN, curl=curl)


def test_check_reports_a_stale_backlog(mariadb: Any, conn: Any) -> None:
    install(conn)
    _ring(conn, 50)
    fresh = CliRunner().invoke(main, ["mysql", "check", "--dsn", mariadb.url(conn.db.decode())])
    assert fresh.exit_code == 0, fresh.output
    assert "outbox backlog: 1 rows" in fresh.output
    assert "trigger errors (callbridge_errors): none" in fresh.output
    with conn.cursor() as cur:
        cur.execute("UPDATE callbridge_outbox SET created_at = NOW(6) - INTERVAL 2 HOUR")
    stale = CliRunner().invoke(main, ["mysql", "check", "--dsn", mariadb.url(conn.db.decode())])
    assert stale.exit_code == 1
    assert "the oldest outbox row is 7200 s old" in stale.output


def test_a_deadlock_in_a_trigger_still_fails_the_pbx_statement(mariadb: Any, conn: Any) -> None:
    """InnoDB rolls back the PBX's whole transaction on a deadlock: it must hear about it.

    Our handlers must not swallow that one. (They cannot: the server does not let a handler in
    a trigger catch an error that rolled back the transaction; this test keeps it so.)
    """
    install(conn)
    _ring(conn, 1)
    _ring(conn, 2)
    other = mariadb.connect(conn.db.decode(), autocommit=False)
    pbx = mariadb.connect(conn.db.decode(), autocommit=False)
    try:
        with other.cursor() as cur:  # heavier, so InnoDB picks the PBX's transaction as victim
            cur.executemany(
                "INSERT INTO callbridge_outbox (ssn_event, params) VALUES (0, '{}')", [()] * 50
            )
            cur.execute("INSERT INTO callbridge_answered (companyid, usercallid) VALUES (1, 2)")
        with pbx.cursor() as cur:  # locks call 1's row; its trigger answers call 1
            cur.execute("UPDATE monitor_user_calls SET status = 2 WHERE usercallid = 1")
        outcome: list[BaseException | None] = []

        def answer_call_2() -> None:  # the trigger's insert of (1, 2) waits for `other`
            try:
                with pbx.cursor() as cur:
                    cur.execute("UPDATE monitor_user_calls SET status = 2 WHERE usercallid = 2")
                outcome.append(None)
            except pymysql.err.MySQLError as exc:
                outcome.append(exc)

        waiter = threading.Thread(target=answer_call_2)
        waiter.start()
        time.sleep(0.5)
        with other.cursor() as cur, contextlib.suppress(pymysql.err.MySQLError):
            cur.execute("UPDATE monitor_user_calls SET party_nr = 'x' WHERE usercallid = 1")
        waiter.join(30)
        other.rollback()
        assert len(outcome) == 1
        if outcome[0] is None:  # the PBX was not the victim: its writes must all be there
            pbx.commit()
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM monitor_user_calls WHERE status = 2")
                assert cur.fetchone()[0] == 2
        else:  # it was: it hears the deadlock, never a silent rollback
            assert outcome[0].args[0] == 1213
    finally:
        other.close()
        pbx.close()
