"""``callbridge companies export|purge`` on a real SQLite journal and a real Redis, through
the real command (a ``callbridge`` process for the terminal and the Redis runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from redis_support import RedisServer

from callbridge.cli import main
from callbridge.journal.factory import open_journal
from callbridge.settings import load_settings
from callbridge.voispeed.events import parse_event


@pytest.fixture(params=["sqlite", "redis"])
def journal_env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """A journal (SQLite file or Redis prefix) holding two companies' events and calls;
    the environment that names it is set for the test and returned for subprocesses."""
    spec = "sqlite"
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        spec = server.unique_url()
    env = {"CALLBRIDGE_DATA_DIR": str(tmp_path), "CALLBRIDGE_JOURNAL": spec}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    journal = open_journal(load_settings())
    for company, company_id in (("acme", "1"), ("globex", "2")):
        for i in range(2):
            params = {
                "ssn_event": "16",
                "call_id": f"{company_id}000000{i}",
                "number": "0612345678",
                "ext": "201",
                "company_id": company_id,
                "token": "ingress-secret",
            }
            journal.append_event(parse_event(params), raw=params, company=company)
        journal.append_agent_event("201", "pop", {"n": company}, company=company)
    journal.close()
    return env


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["companies", *args])


def _counts(env: dict[str, str], company: str) -> int:
    journal = open_journal(load_settings())
    try:
        return sum(1 for _ in journal.export_company(company))
    finally:
        journal.close()


def test_export_to_a_file_has_one_companys_records_and_no_secret(
    journal_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "acme.jsonl"
    result = _run("export", "acme", "--output", str(out))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["record"], r["company"]) for r in lines] == [
        ("event", "acme"),
        ("event", "acme"),
        ("agent_event", "acme"),
    ]
    assert "ingress-secret" not in out.read_text()
    assert out.stat().st_mode & 0o077 == 0
    assert "exported 3 record(s) of company acme" in result.output


def test_export_to_stdout_and_unknown_or_bad_names(journal_env: dict[str, str]) -> None:
    result = _run("export", "globex")
    assert result.exit_code == 0
    assert sum('"record": "event"' in line for line in result.stdout.splitlines()) == 2
    unknown = _run("export", "initech")
    assert unknown.exit_code == 1
    assert "no data of company 'initech'" in unknown.output
    assert "acme, globex" in unknown.output
    assert _run("export", "Not A Slug").exit_code == 2


def test_purge_without_yes_deletes_nothing_and_with_yes_only_that_company(
    journal_env: dict[str, str],
) -> None:
    refused = _run("purge", "acme", "--json")
    assert refused.exit_code == 1
    assert json.loads(refused.stdout.splitlines()[0])["counts"]["event"] == 2
    assert "nothing deleted" in refused.output
    assert _counts(journal_env, "acme") == 3

    done = _run("purge", "acme", "--yes", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["deleted"] is True
    assert report["counts"]["event"] == 2 and report["counts"]["agent_event"] == 1
    assert _counts(journal_env, "acme") == 0
    assert _counts(journal_env, "globex") == 3
    assert _run("purge", "acme", "--yes").exit_code == 1  # nothing of it is left


def test_purge_on_a_terminal_without_yes_refuses(journal_env: dict[str, str]) -> None:
    """A real ``callbridge`` process on a pseudo-terminal: still nothing is deleted."""
    primary, secondary = os.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "callbridge.cli", "companies", "purge", "acme"],
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            env={**os.environ, **journal_env},
            timeout=120,
            check=False,
        )
    finally:
        os.close(secondary)
        os.close(primary)
    assert done.returncode == 1
    assert _counts(journal_env, "acme") == 3

    done = subprocess.run(
        [sys.executable, "-m", "callbridge.cli", "companies", "purge", "acme", "--yes"],
        capture_output=True,
        text=True,
        env={**os.environ, **journal_env},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "deleted" in done.stdout and "event" in done.stdout
    assert _counts(journal_env, "acme") == 0
    assert _counts(journal_env, "globex") == 3
