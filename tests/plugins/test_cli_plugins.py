"""``callbridge plugins``: in process (CliRunner) and as a real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from callbridge.cli import main

BUILTINS = {"console", "directory", "webhook"}


def command() -> list[str]:
    """The installed ``callbridge`` script next to this interpreter, else the module."""
    script = Path(sys.executable).with_name("callbridge")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from callbridge.cli import main; main()"]


def test_table_shows_the_builtins(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["plugins"], env={"CALLBRIDGE_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    for name in BUILTINS:
        assert name in result.output
    assert "not configured" in result.output
    assert "CALLBRIDGE_WEBHOOK_URLS" in result.output
    assert "lookup_contact" in result.output


def test_json_lists_every_field(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["plugins", "--json"], env={"CALLBRIDGE_DATA_DIR": str(tmp_path)}
    )
    assert result.exit_code == 0, result.output
    listed = {item["name"]: item for item in json.loads(result.stdout)}
    assert set(listed) >= BUILTINS
    assert listed["directory"]["state"] == "active"
    assert listed["directory"]["source"] == "builtin"
    assert listed["webhook"]["state"] == "not configured"
    fields = {"name", "company", "version", "source", "state", "reason", "hooks", "notes"}
    assert set(listed["console"]) == fields
    assert listed["console"]["notes"] == []
    assert "log_call" in listed["console"]["hooks"]


def test_unknown_connector_exits_with_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["plugins"],
        env={"CALLBRIDGE_DATA_DIR": str(tmp_path), "CALLBRIDGE_CONNECTORS": "nope"},
    )
    assert result.exit_code == 2
    assert "CALLBRIDGE_CONNECTORS: unknown plugin(s) 'nope'" in result.output


def test_real_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CALLBRIDGE_")}
    env["CALLBRIDGE_DATA_DIR"] = str(tmp_path / "data")
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [*command(), "plugins", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    states = {item["name"]: item["state"] for item in json.loads(done.stdout)}
    assert states["console"] == "active"
    assert states["directory"] == "active"
    assert states["webhook"] == "not configured"
    assert (tmp_path / "data" / "directory.sqlite3").is_file()

    table = subprocess.run(
        [*command(), "plugins"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert table.returncode == 0, table.stderr
    for name in BUILTINS:
        assert name in table.stdout
