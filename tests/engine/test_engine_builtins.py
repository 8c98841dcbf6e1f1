"""The issue's "done when": a scripted call sequence through the engine and the built-ins."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import answered, incoming, local_hangup, make_settings, remote_hangup

from callbridge.engine.engine import Engine
from callbridge.journal import DeliveryState
from callbridge.journal.sqlite import SqliteJournal
from callbridge.plugins.manager import load_plugins


def test_scripted_calls_pop_and_log_once_in_directory_and_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CALLBRIDGE_CONNECTORS", "CALLBRIDGE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    settings = make_settings(tmp_path)
    plugins = load_plugins(settings, entry_points=False)
    assert {"directory", "console"} <= set(plugins.implementers("log_call"))
    directory = plugins.get("directory").plugin
    directory.add_contact("Mario Rossi", ["06 1234 5678"], company="ACME")  # type: ignore[union-attr]
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    engine = Engine(settings, journal=journal, plugins=plugins, poll_interval=0.01)
    engine.start()
    try:
        engine.ingest(incoming("00000001"))
        engine.ingest(answered("00000001"))
        engine.ingest(remote_hangup("00000001"))
        engine.ingest(incoming("00000002", number="+39 02 9999 9999", ext="202"))
        engine.ingest(local_hangup("00000002", number="+39 02 9999 9999", ext="202"))
        assert engine.wait_idle(30)
        pops = journal.agent_events_after("201", 0)
        assert [p.data["state"] for p in pops] == ["ringing", "answered", "ended"]
        assert pops[0].data["contacts"]["directory"]["name"] == "Mario Rossi"
        activities = directory.list_activities()  # type: ignore[union-attr]
        assert sorted(a.call_key for a in activities) == ["1:00000001", "1:00000002"]
        by_key = {a.call_key: a for a in activities}
        assert by_key["1:00000001"].contact_name == "Mario Rossi"
        assert by_key["1:00000001"].outcome == "answered"
        assert by_key["1:00000002"].outcome == "missed"
        deliveries = journal.list_deliveries()
        assert sorted((d.call_key, d.plugin) for d in deliveries) == [
            ("1:00000001", "console"),
            ("1:00000001", "directory"),
            ("1:00000002", "console"),
            ("1:00000002", "directory"),
        ]
        assert all(d.state is DeliveryState.DONE for d in deliveries)
    finally:
        engine.stop()
        journal.close()
