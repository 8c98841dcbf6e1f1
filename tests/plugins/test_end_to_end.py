"""The built-ins behind the real engine: a scripted call gives pops and exactly one activity."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.engine.engine import Engine
from callbridge.journal.sqlite import SqliteJournal
from callbridge.plugins.builtin.directory import DirectoryPlugin
from callbridge.plugins.manager import load_plugins
from callbridge.settings import DispatchSettings, Settings, TrackerSettings
from callbridge.testing import wait_until


def event(ssn: int, call_id: str, number: str, ext: str) -> dict[str, str]:
    return {
        "ssn_event": str(ssn),
        "call_id": call_id,
        "number": number,
        "ext": ext,
        "company_id": "1",
        "sender_type": "0",
    }


def test_scripted_calls_through_console_and_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    console_log = tmp_path / "console.log"
    monkeypatch.setenv("CALLBRIDGE_CONSOLE_STREAM", str(console_log))
    settings = Settings(
        data_dir=tmp_path / "data",
        dispatch=DispatchSettings(workers=2, backoff_initial=0.01, backoff_max=0.05),
        tracker=TrackerSettings(group_window=0.0),
    )
    plugins = load_plugins(settings, entry_points=False)
    assert [i.name for i in plugins.active()] == ["directory", "console"]
    directory = plugins.get("directory").plugin
    assert isinstance(directory, DirectoryPlugin)
    directory.seed_sample_contacts()

    journal = SqliteJournal(tmp_path / "data" / "journal.sqlite3")
    engine = Engine(settings, journal=journal, plugins=plugins, tick_interval=0.05)
    with engine:
        # Mario Rossi calls extension 201, who answers; then hangs up.
        engine.ingest(event(16, "0000AB01", "06 1234 5678", "201"))
        engine.ingest(event(18, "0000AB01", "201", "06 1234 5678"))
        engine.ingest(event(21, "0000AB01", "06 1234 5678", "201"))
        # An unknown caller that nobody answers.
        engine.ingest(event(16, "0000AB02", "+39 02 5555 1234", "202"))
        engine.ingest(event(20, "0000AB02", "+39 02 5555 1234", "202"))
        # The same end event again: still one activity.
        engine.ingest(event(21, "0000AB01", "06 1234 5678", "201"))
        wait_until(lambda: len(directory.list_activities(10)) == 2, "two activities", timeout=60.0)
        wait_until(
            lambda: console_log.read_text(encoding="utf-8").count("logged") == 2,
            "logs",
            timeout=60.0,
        )
        assert engine.wait_idle(timeout=60)
    plugins.shutdown(None)

    activities = {a.call_key.split(":")[-1]: a for a in directory.list_activities(10)}
    assert len(activities) == 2
    mario = activities["0000AB01"]
    assert (mario.contact_name, mario.remote_number, mario.outcome) == (
        "Mario Rossi",
        "+390612345678",
        "answered",
    )
    assert mario.local_extension == "201"
    unknown = activities["0000AB02"]
    assert unknown.contact_id is None
    assert unknown.outcome != "answered"

    lines = console_log.read_text(encoding="utf-8").splitlines()
    assert any("ringing" in line and "Mario Rossi" in line for line in lines)
    assert any("answered" in line and "Mario Rossi" in line for line in lines)
    assert sum("logged" in line for line in lines) == 2
