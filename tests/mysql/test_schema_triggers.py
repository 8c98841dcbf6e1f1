"""The document's tables and our triggers on a real MariaDB: the rows they produce."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from mysql_helpers import HOSTILE, add_user, install, outbox

from callbridge.mysql import schema, triggers
from callbridge.voispeed.events import parse_event

pytestmark = pytest.mark.mysql


@pytest.fixture
def conn(mariadb: Any, database: str) -> Any:
    connection = mariadb.connect(database)
    yield connection
    connection.close()


def test_schema_applies_and_has_every_documented_column(conn: Any) -> None:
    triggers.apply_statements(conn, schema.schema_statements())
    triggers.apply_statements(conn, schema.schema_statements())  # idempotent
    with conn.cursor() as cur:
        for table, columns in schema.TABLES.items():
            cur.execute(f"SHOW COLUMNS FROM `{table}`")
            names = [row[0] for row in cur.fetchall()]
            assert names == [c.name for c in columns], table
        cur.execute("SHOW COLUMNS FROM users LIKE 'username'")
        assert cur.fetchone()[1] == "varchar(80)"
        cur.execute("SHOW COLUMNS FROM monitor_gateways LIKE 'lines'")
        assert cur.fetchone()[1] == "int(10) unsigned"
    assert len(schema.TABLES["users"]) == 78  # every column the document lists
    assert "`group` VARCHAR(20)" in schema.schema_sql()


def test_schema_drop_recreates(conn: Any) -> None:
    triggers.apply_statements(conn, schema.schema_statements())
    with conn.cursor() as cur:
        cur.execute("INSERT INTO `groups` (name) VALUES ('sales')")
    triggers.apply_statements(conn, schema.schema_statements(drop=True))
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM `groups`")
        assert cur.fetchone()[0] == 0


def _call(conn: Any, **values: Any) -> None:
    cols = ", ".join(f"`{k}`" for k in values)
    marks = ", ".join(["%s"] * len(values))
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO monitor_user_calls ({cols}) VALUES ({marks})", list(values.values())
        )


def _status(conn: Any, usercallid: int, status: int) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE monitor_user_calls SET status = %s WHERE usercallid = %s", (status, usercallid)
        )


def test_inbound_answered_call(conn: Any) -> None:
    install(conn)
    uid = add_user(conn, "201")
    _call(
        conn,
        companyid=1,
        usercallid=0x12A0,
        userid=uid,
        direction=1,
        status=1,
        party_nr="0612345678",
        party_desc="Anna|Bianchi|Acme|0|0",
        group="sales",
        externalid=None,
    )
    _status(conn, 0x12A0, 2)
    _status(conn, 0x12A0, 3)  # hold
    _status(conn, 0x12A0, 2)  # retrieved: not a second answer
    _status(conn, 0x12A0, 6)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM monitor_user_calls")  # closed rows removed: no more events
    rows = outbox(conn)
    assert [r[1] for r in rows] == [16, 18, 21]
    ring, answer, end = (r[2] for r in rows)
    assert ring == {
        "ssn_event": "16",
        "company_id": "1",
        "sender_id": f"{uid:08X}",
        "sender_type": "0",
        "call_id": "000012A0",
        "ext_id": None,
        "number": "0612345678",
        "ext": "201",
        "identity": "Anna|Bianchi|Acme|0|0",
        "group": "sales",
        "direction": "1",
        "user_id": f"{uid:08X}",
        "cb_hangup_unknown": None,
        "cb_recording": None,  # the row's recording flag is 0
    }
    # 18 on an incoming call: number = callee (our user), ext = caller
    assert (answer["number"], answer["ext"]) == ("201", "0612345678")
    assert (end["number"], end["ext"]) == ("0612345678", "201")
    assert end["cb_hangup_unknown"] == "1"  # the tables do not say who hung up
    event = parse_event({k: v for k, v in ring.items() if v is not None})
    assert event.call_id == "000012A0"
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM callbridge_answered")
        assert cur.fetchone()[0] == 0  # state is cleaned up when the call closes


def test_inbound_missed_and_deleted_unclosed(conn: Any) -> None:
    install(conn)
    uid = add_user(conn, "202")
    _call(conn, companyid=1, usercallid=10, userid=uid, direction=1, status=1, party_nr="333")
    _status(conn, 10, 6)
    _call(conn, companyid=1, usercallid=11, userid=uid, direction=1, status=1, party_nr="444")
    with conn.cursor() as cur:
        cur.execute("DELETE FROM monitor_user_calls WHERE usercallid = 11")  # vanished unclosed
    events = [(r[1], r[2]["call_id"]) for r in outbox(conn)]
    assert events == [(16, "0000000A"), (19, "0000000A"), (16, "0000000B"), (19, "0000000B")]
    missed = outbox(conn)[1][2]
    assert (missed["number"], missed["ext"]) == ("202", "333")  # callee = user, caller


def test_outbound_answered_with_external_id(conn: Any) -> None:
    install(conn)
    uid = add_user(conn, "203")
    _call(conn, companyid=1, usercallid=20, userid=uid, direction=0, status=7, party_nr="555")
    with conn.cursor() as cur:  # direction known later: 17 fires on the update
        cur.execute(
            "UPDATE monitor_user_calls SET direction = 2, externalid = 'cb-1' WHERE usercallid = 20"
        )
    _status(conn, 20, 2)
    _status(conn, 20, 8)  # killme counts as closed
    rows = outbox(conn)
    assert [r[1] for r in rows] == [17, 18, 21]
    assert all(r[2]["ext_id"] == "cb-1" for r in rows)
    assert (rows[0][2]["number"], rows[0][2]["ext"]) == ("555", "203")
    assert (rows[1][2]["number"], rows[1][2]["ext"]) == ("555", "203")  # callee = remote


def test_devices_login_logout(conn: Any) -> None:
    install(conn)
    uid = add_user(conn, "204")
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO monitor_devices (companyid, deviceid, userid, devicety, host, descript)"
            " VALUES (1, 77, %s, 2, '10.0.0.5:5060', 'Yealink T46')",
            (uid,),
        )
        cur.execute("DELETE FROM monitor_devices WHERE deviceid = 77")
    rows = outbox(conn)
    assert [r[1] for r in rows] == [1, 2]
    login = parse_event({k: v for k, v in rows[0][2].items() if v is not None})
    assert login.device_id == "0000004D"
    assert (login.device_ip, login.device_port, login.number) == ("10.0.0.5", 5060, "204")


def test_pbx_last_insert_id_is_not_disturbed(conn: Any) -> None:
    install(conn)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO callbridge_outbox (ssn_event, params) VALUES (0, '{}')")
        cur.execute("INSERT INTO callbridge_outbox (ssn_event, params) VALUES (0, '{}')")
        cur.execute(
            "INSERT INTO monitor_user_calls (usercallid, direction, status) VALUES (1, 1, 1)"
        )
        cur.execute("SELECT LAST_INSERT_ID(), (SELECT MAX(id) FROM callbridge_outbox)")
        last, outbox_max = cur.fetchone()
    assert last == 1  # the PBX still sees its own row's id
    assert outbox_max == 3


def test_hostile_values_are_data(conn: Any) -> None:
    install(conn)
    uid = add_user(conn, "205")
    tag = uuid.uuid4().hex[:8]
    values = [v.format(tag=tag) for v in HOSTILE]
    for i, value in enumerate(values):
        _call(
            conn,
            companyid=1,
            usercallid=100 + i,
            userid=uid,
            direction=1,
            status=1,
            party_nr=value[:20],
            party_desc=value,
            group=value[:20],
            externalid=value[:40],
        )
    rows = outbox(conn)
    assert len(rows) == len(values)
    for (_, ssn, params), value in zip(rows, values, strict=True):
        assert ssn == 16
        assert (params["number"], params["identity"], params["group"]) == (
            value[:20],
            value,
            value[:20],
        )
    assert not list(Path("/tmp").glob(f"cb_pwned_{tag}*"))


def test_generated_literals_refuse_what_they_cannot_quote() -> None:
    assert schema.quote_literal("it's") == "'it''s'"
    with pytest.raises(ValueError):
        schema.quote_literal("a\\b")
    with pytest.raises(ValueError):
        schema.quote_literal("a\nb")
    assert schema.quote_identifier("gr`oup") == "`gr``oup`"


@pytest.mark.parametrize(
    "url",
    [
        "http://h/x?a=1",
        "http://h/x y",
        "http://h/$(id)",
        "http://h/`id`",
        'http://h/"',
        "http://h/'",
        "http://u:p@h/",
        "http://h/%20",
        "ftp://h/",
        "http://h/a;b",
        "http://h/a|b",
        "http://h/a&b",
        "http://h:99999/",
        "",
    ],
)
def test_sys_exec_refuses_unsafe_urls(url: str) -> None:
    with pytest.raises(triggers.UnsafeValue):
        triggers.trigger_statements("sys_exec", url=url, token="t" * 20)


@pytest.mark.parametrize("token", ["short", "x" * 15 + " ", "a'b" * 8, "$(id)" * 4, "é" * 20])
def test_sys_exec_refuses_unsafe_tokens_without_echoing_them(token: str) -> None:
    with pytest.raises(triggers.UnsafeValue) as info:
        triggers.trigger_statements("sys_exec", url="http://h:8765/pbx/events", token=token)
    assert token not in str(info.value)


def _install_standin_sys_exec(conn: Any) -> None:
    """A SQL stand-in for the UDF: records the command line instead of running it."""
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE sys_exec_log (id INT AUTO_INCREMENT PRIMARY KEY, cmd TEXT)")
        cur.execute(
            "CREATE FUNCTION sys_exec(cmd TEXT CHARACTER SET utf8mb4) RETURNS INT MODIFIES SQL DATA"
            " BEGIN INSERT INTO sys_exec_log (cmd) VALUES (cmd); RETURN 0; END"
        )


def test_sys_exec_mode_runs_only_url_id_and_token(conn: Any) -> None:
    token = "Tok_en-" + uuid.uuid4().hex
    _install_standin_sys_exec(conn)
    install(conn, "sys_exec", url="http://127.0.0.1:8765/pbx/events", token=token)
    uid = add_user(conn, "206")
    tag = uuid.uuid4().hex[:8]
    for i, value in enumerate(v.format(tag=tag) for v in HOSTILE):
        with conn.cursor() as cur:  # each write nudges (not only one per 0.5 s)
            cur.execute(f"SET {triggers.NUDGE_VARIABLE} = NULL")
        _call(
            conn,
            companyid=1,
            usercallid=200 + i,
            userid=uid,
            direction=2,
            status=1,
            party_nr=value[:20],
            party_desc=value,
        )
    rows = outbox(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT cmd FROM sys_exec_log ORDER BY id")
        commands = [r[0] for r in cur.fetchall()]
    assert len(commands) == len(rows) == len(HOSTILE)
    for (row_id, _, _), cmd in zip(rows, commands, strict=True):
        assert cmd == (
            '"curl" -s -g -m 3 -o /dev/null'
            f' "http://127.0.0.1:8765/pbx/events?outbox_id={row_id}&token={token}"'
            " >/dev/null 2>&1 &"
        )
    assert not list(Path("/tmp").glob(f"cb_pwned_{tag}*"))


def test_rendered_script_and_uninstall(conn: Any) -> None:
    script = triggers.render_script(triggers.trigger_statements("outbox"))
    assert script.count("CREATE TRIGGER") == 5
    assert "DELIMITER //" in script
    install(conn)
    triggers.apply_statements(conn, triggers.uninstall_statements())
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
        )
        assert cur.fetchone()[0] == 0
