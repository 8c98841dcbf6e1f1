"""``callbridge journal prune`` on a real SQLite journal in a temporary data directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callbridge.cli import main
from callbridge.journal.sqlite import SqliteJournal
from callbridge.voispeed.events import parse_event


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CALLBRIDGE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CALLBRIDGE_JOURNAL", raising=False)
    monkeypatch.delenv("CALLBRIDGE_RETENTION_DAYS", raising=False)
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    old = datetime.now(UTC) - timedelta(days=40)
    seqs = []
    for call_id in ("00000001", "00000002", "00000003"):
        params = {"ssn_event": "16", "call_id": call_id, "number": "06", "ext": "201"}
        seqs.append(journal.append_event(parse_event(params), raw=params, received_at=old).seq)
    journal.set_cursor("dispatcher", seqs[1])
    journal.close()
    return tmp_path


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["journal", "prune", *args], catch_exceptions=False)


def _events(data_dir: Path) -> int:
    journal = SqliteJournal(data_dir / "journal.sqlite3")
    try:
        return len(journal.events_after(0))
    finally:
        journal.close()


def test_dry_run_counts_and_deletes_nothing(data_dir: Path) -> None:
    result = _run("--dry-run", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["dry_run"] is True
    assert report["counts"]["events"] == 2
    assert _events(data_dir) == 3


def test_prune_deletes_past_the_retention_and_prints_a_table(data_dir: Path) -> None:
    result = _run()
    assert result.exit_code == 0, result.output
    assert "deleted" in result.output
    assert "events" in result.output
    assert _events(data_dir) == 1


def test_older_than_overrides_the_setting(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert json.loads(_run("--older-than", "50", "--json").output)["counts"]["events"] == 0
    monkeypatch.setenv("CALLBRIDGE_RETENTION_DAYS", "0")
    result = _run()
    assert "CALLBRIDGE_RETENTION_DAYS=0" in result.output
    assert _events(data_dir) == 3
    assert json.loads(_run("--older-than", "10", "--json").output)["counts"]["events"] == 2


def test_a_negative_age_is_refused(data_dir: Path) -> None:
    result = CliRunner().invoke(main, ["journal", "prune", "--older-than", "-1"])
    assert result.exit_code == 2
    assert _events(data_dir) == 3
