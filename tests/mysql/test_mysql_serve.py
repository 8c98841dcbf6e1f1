"""``callbridge serve --source mysql://...`` as a real process: rows in, pops and activities out.

The PBX side is the simulator writing the monitor tables of a real MariaDB (the triggers fill
the outbox); callbridge runs exactly as an operator starts it, with the engine and the MySQL
source in its child process. Nothing reaches ``/pbx/events``: the outbox is the only path.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mysql_helpers import add_user, install
from service_support import API_TOKEN, INGRESS_TOKEN, Service, raw_get

from callbridge.cli import main
from callbridge.mysql.sink import MysqlSink, SinkUser
from callbridge.sim.engine import CallEngine
from callbridge.sim.model import default_directory
from callbridge.testing import wait_until

pytestmark = [pytest.mark.mysql, pytest.mark.slow]


def test_serve_with_a_mysql_source_pops_and_logs_each_call_once(
    mariadb: Any, database: str, tmp_path: Path
) -> None:
    conn = mariadb.connect(database)
    install(conn)
    directory = default_directory()
    sink = MysqlSink(mariadb.url(database))
    sink.load_users(
        SinkUser(u.id, u.extension, u.company_id, u.login, u.name, u.surname)
        for u in directory.users
    )
    pbx = CallEngine(directory, sink)
    service = Service(
        tmp_path / "data",
        CALLBRIDGE_MYSQL_POLL_INTERVAL="0.05",
        CALLBRIDGE_CONNECTORS="directory",
    )
    service.env.pop("CALLBRIDGE_SOURCE", None)
    service.start_args = ("--source", mariadb.url(database))  # the operator's way
    try:
        service.start()
        answered = pbx.incoming_call("+390612345678", "201", caller_name="Anna Bianchi")
        pbx.answer(answered)
        pbx.hangup(answered, by="remote")
        missed = pbx.incoming_call("+390698765432", "202")
        pbx.reject(missed)

        def calls() -> list[dict[str, Any]]:
            result = service.cli("calls", "--json")
            assert result.returncode == 0, result.stderr
            found: list[dict[str, Any]] = json.loads(result.stdout)
            return found

        def both_logged() -> bool:
            rows = calls()
            return len(rows) == 2 and all(
                any(d["state"] == "done" for d in row.get("deliveries", [])) for row in rows
            )

        wait_until(both_logged, "two calls logged by the directory", timeout=60)
        rows = sorted(calls(), key=lambda row: str(row["extension"]))
        assert [row["extension"] for row in rows] == ["201", "202"]
        # The tables cannot tell a rejection from a caller giving up (docs/mysql.md): an
        # unanswered close is reported as missed, not as a rejection we cannot prove.
        assert [row["outcome"] for row in rows] == ["answered", "missed"]
        # Nor who hung up: nobody is blamed (the triggers used to send "local" for every call).
        assert [row["hung_up_by"] for row in rows] == ["unknown", "unknown"]
        for row in rows:
            assert [d["plugin"] for d in row["deliveries"]] == ["directory"]
        pops = service.cli("deliveries", "list", "--json")
        assert pops.returncode == 0
        assert len(json.loads(pops.stdout)) == 2  # one delivery per call, none twice
        assert API_TOKEN not in service.output()
        assert sink.failures == []
    finally:
        service.stop()
        sink.close()
        conn.close()


def _check(dsn: str, *extra: str) -> Any:
    return CliRunner().invoke(main, ["mysql", "check", "--dsn", dsn, *extra])


def test_sys_exec_nudges_a_real_serve_and_check_tests_the_url_and_token(
    mariadb: Any, database: str, tmp_path: Path, sys_exec_udf: None
) -> None:
    """Trigger -> real shell -> real curl -> ingress -> engine process -> source, end to end.

    The source polls only every 30 s: an event in well under that came through the nudge.
    """
    conn = mariadb.connect(database)
    dsn = mariadb.url(database)
    service = Service(tmp_path / "data", CALLBRIDGE_MYSQL_POLL_INTERVAL="30")
    service.start_args = ("--source", dsn)
    try:
        service.start()
        install(conn, "sys_exec", url=f"{service.url}/pbx/events", token=INGRESS_TOKEN)
        uid = add_user(conn, "201")
        time.sleep(1.0)  # the source's first poll is done: it sleeps its 30 s now
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO monitor_user_calls (companyid, usercallid, userid, direction,"
                " status, party_nr) VALUES (1, 77, %s, 1, 1, '0612345678')",
                (uid,),
            )
        written = time.monotonic()

        def journaled() -> bool:
            result = service.cli("calls", "--json")
            return result.returncode == 0 and any(
                row["extension"] == "201" for row in json.loads(result.stdout)
            )

        wait_until(journaled, "the event journaled after the nudge", timeout=20)
        assert time.monotonic() - written < 10  # not the 30 s poll interval

        report = _check(dsn)
        assert "nudge: ok " in report.output, report.output
        assert f"{service.url}/pbx/events: 202 nudged" in report.output
        assert INGRESS_TOKEN not in report.output
        wrong = _check(dsn, "--url", f"{service.url}/pbx/events", "--token", "x" * 20)
        assert wrong.exit_code == 1
        assert "not answered 202" in wrong.output
        assert "403 token invalid" in wrong.output
    finally:
        service.stop()
        conn.close()


def test_serve_without_a_source_answers_nudges_409_and_says_why(
    mariadb: Any, database: str, tmp_path: Path
) -> None:
    service = Service(tmp_path / "data")
    service.env.pop("CALLBRIDGE_SOURCE", None)
    try:
        service.start()
        for outbox_id in (1, 2, 3):
            status, body = raw_get(
                service.port, f"/pbx/events?outbox_id={outbox_id}&token={INGRESS_TOKEN}".encode()
            )
            assert (status, body) == (409, b"no MySQL source configured (CALLBRIDGE_SOURCE)\n")
        wait_until(lambda: "no MySQL source runs here" in service.output(), "the warning")
        assert service.output().count("no MySQL source runs here") == 1  # once a minute
        conn = mariadb.connect(database)
        install(conn)
        report = _check(
            mariadb.url(database), "--url", f"{service.url}/pbx/events", "--token", INGRESS_TOKEN
        )
        conn.close()
        assert report.exit_code == 1
        assert "409 no MySQL source configured" in report.output
    finally:
        service.stop()
