"""``callbridge mysql ...`` against a real MariaDB: schema, triggers --apply, --check."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from click.testing import CliRunner

from callbridge.cli import main

pytestmark = pytest.mark.mysql


def _run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, ["mysql", *args], env=env, catch_exceptions=False)


def test_schema_prints_ddl() -> None:
    result = _run("schema")
    assert result.exit_code == 0
    assert result.output.count("CREATE TABLE IF NOT EXISTS") == 8
    assert "`username` VARCHAR(80)" in result.output


def test_triggers_print_and_refuse_bad_input() -> None:
    result = _run("triggers", "--mode", "outbox")
    assert result.exit_code == 0
    assert "CREATE TRIGGER `callbridge_muc_au`" in result.output
    bad = _run("triggers", "--mode", "sys_exec", "--url", "http://h/x", "--token", "sh'ort")
    assert bad.exit_code == 2
    assert "sh'ort" not in bad.output
    missing = _run("triggers", "--mode", "sys_exec", env={"CALLBRIDGE_INGRESS_TOKEN": ""})
    assert missing.exit_code == 2
    assert "needs the ingress URL" in missing.output


def test_apply_then_check_as_admin_and_as_a_limited_user(mariadb: Any, database: str) -> None:
    url = mariadb.url(database)
    assert _run("schema", "--apply", "--dsn", url).exit_code == 0
    before = _run("check", "--dsn", url)
    assert before.exit_code == 1
    assert "callbridge_outbox is missing" in before.output
    applied = _run("triggers", "--mode", "outbox", "--apply", "--dsn", url)
    assert applied.exit_code == 0, applied.output
    report = _run("triggers", "--check", "--dsn", url)
    assert report.exit_code == 0, report.output
    assert "mode: outbox" in report.output
    assert "ok callbridge_muc_ai" in report.output
    assert "sys_exec: absent" in report.output
    assert "result: OK" in report.output

    user, password = "cb_" + uuid.uuid4().hex[:8], uuid.uuid4().hex
    with mariadb.connect().cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT SELECT ON `{database}`.* TO '{user}'@'%'")
    limited = mariadb.url(database, user, password)
    as_json = _run("check", "--json", "--dsn", limited)
    assert as_json.exit_code == 1
    data = json.loads(as_json.output)
    assert data["privileges"]["SELECT"] is True
    assert data["privileges"]["DELETE"] is False
    assert any("lacks DELETE" in p for p in data["problems"])
    assert password not in as_json.output
    with mariadb.connect().cursor() as cur:
        cur.execute(f"GRANT DELETE ON `{database}`.`callbridge_outbox` TO '{user}'@'%'")
    reader = _run("check", "--dsn", limited)
    assert reader.exit_code == 0, reader.output
    assert "?? callbridge_muc_ai" in reader.output  # a reader cannot list triggers

    gone = _run("triggers", "--uninstall", "--apply", "--dsn", url)
    assert gone.exit_code == 0
    assert "-- callbridge_muc_ai" in _run("check", "--dsn", url).output
    with mariadb.connect().cursor() as cur:
        cur.execute(f"DROP USER '{user}'@'%'")


def test_check_flags_a_vendor_style_sys_exec_trigger(mariadb: Any, database: str) -> None:
    url = mariadb.url(database)
    _run("schema", "--apply", "--dsn", url)
    _run("triggers", "--apply", "--dsn", url)
    with mariadb.connect(database).cursor() as cur:
        cur.execute(
            "CREATE FUNCTION sys_exec(cmd TEXT) RETURNS INT DETERMINISTIC RETURN LENGTH(cmd)"
        )
        cur.execute(
            "CREATE TRIGGER vendor_ai AFTER INSERT ON monitor_calls FOR EACH ROW"
            " DO sys_exec(CONCAT('curl http://x/?n=', NEW.callingnr))"
        )
    report = _run("check", "--dsn", url)
    assert report.exit_code == 1
    assert "vendor_ai" in report.output
    assert "stored function" in report.output


def test_connection_errors_are_clear_and_hide_the_password() -> None:
    result = _run("check", "--dsn", "mysql://u:hunter2secret@127.0.0.1:1/db")
    assert result.exit_code == 2
    assert "cannot connect to mysql://u:***@127.0.0.1:1/db" in result.output
    assert "hunter2secret" not in result.output
    assert _run("check", env={"CALLBRIDGE_SOURCE": ""}).exit_code == 2
