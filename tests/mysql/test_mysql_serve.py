"""``callbridge serve --source mysql://...`` as a real process: rows in, pops and activities out.

The PBX side is the simulator writing the monitor tables of a real MariaDB (the triggers fill
the outbox); callbridge runs exactly as an operator starts it, with the engine and the MySQL
source in its child process. Nothing reaches ``/pbx/events``: the outbox is the only path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mysql_helpers import install, wait_for
from service_support import API_TOKEN, Service

from callbridge.mysql.sink import MysqlSink, SinkUser
from callbridge.sim.engine import CallEngine
from callbridge.sim.model import default_directory

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

        wait_for(both_logged, timeout=60, what="two calls logged by the directory")
        rows = sorted(calls(), key=lambda row: str(row["extension"]))
        assert [row["extension"] for row in rows] == ["201", "202"]
        # The tables cannot tell a rejection from a caller giving up (docs/mysql.md): an
        # unanswered close is reported as missed, not as a rejection we cannot prove.
        assert [row["outcome"] for row in rows] == ["answered", "missed"]
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
