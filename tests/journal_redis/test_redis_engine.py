"""The real engine (tracker, dispatcher, plugins) over the Redis journal, unchanged.

This is the point of the ``Journal`` interface: swap SQLite for Redis and the same scripted
calls give the same pops and exactly one activity per call and plugin.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import (
    Crm,
    PopRecorder,
    answered,
    incoming,
    local_hangup,
    make_settings,
    remote_hangup,
)
from redis_support import RedisServer

from callbridge.engine.dispatcher import CURSOR_NAME
from callbridge.engine.engine import Engine
from callbridge.journal import DeliveryState
from callbridge.journal.redis import RedisJournal
from callbridge.models import CallState
from callbridge.plugins.manager import load_plugins


def _engine(tmp_path: Path, url: str, *plugins: object) -> tuple[Engine, RedisJournal]:
    settings = make_settings(tmp_path)
    loaded = load_plugins(settings, entry_points=False, builtins=False, extra=list(plugins))
    journal = RedisJournal(url)
    engine = Engine(
        settings, journal=journal, plugins=loaded, tick_interval=0.05, poll_interval=0.01
    )
    return engine, journal


def test_a_scripted_call_pops_and_is_logged_once_per_plugin(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    url = redis_server.unique_url()
    crm, other, recorder = Crm("crm"), Crm("other", contacts={}), PopRecorder()
    engine, journal = _engine(tmp_path, url, crm, other, recorder)
    engine.start()
    try:
        engine.ingest(incoming("00000001"))
        engine.ingest(answered("00000001"))
        engine.ingest(local_hangup("00000001"))
        assert engine.ingest(local_hangup("00000001")).duplicate is True
        assert engine.wait_idle(30)

        assert [p.state for p in recorder.pops] == [
            CallState.RINGING,
            CallState.ANSWERED,
            CallState.ENDED,
        ]
        assert recorder.events == [16, 18, 21]
        pops = journal.agent_events_after("201", 0)
        assert [(p.kind, p.data["state"]) for p in pops] == [
            ("pop", "ringing"),
            ("pop", "answered"),
            ("pop", "ended"),
        ]
        assert pops[0].data["contacts"]["crm"]["record_id"] == "C1"
        deliveries = journal.list_deliveries()
        assert sorted((d.call_key, d.plugin, d.state) for d in deliveries) == [
            ("1:00000001", "crm", DeliveryState.DONE),
            ("1:00000001", "other", DeliveryState.DONE),
        ]
        assert len(crm.logged) == 1
        assert len(other.logged) == 1
        (record,) = crm.logged.values()
        assert record.call.outcome.value == "answered"
        assert journal.delivery_counts() == [("crm", "done", 1), ("other", "done", 1)]
        assert journal.list_calls(open_only=True) == []
        # The dispatcher's high-water mark reached the last event, in Redis.
        assert journal.get_cursor(CURSOR_NAME) == journal.events_after(0)[-1].seq == 3
    finally:
        engine.stop()
        journal.close()

    # A restart over the same Redis keys: replayed PBX events change nothing.
    crm2, other2 = Crm("crm"), Crm("other", contacts={})
    engine, journal = _engine(tmp_path, url, crm2, other2, PopRecorder())
    engine.start()
    try:
        for params in (incoming("00000001"), answered("00000001"), local_hangup("00000001")):
            assert engine.ingest(params).duplicate is True
        assert engine.wait_idle(30)
        assert crm2.logged == {}
        assert other2.logged == {}
        assert len(journal.list_deliveries()) == 2
    finally:
        engine.stop()
        journal.close()


def test_builtin_directory_and_console_over_redis(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CALLBRIDGE_CONNECTORS", "CALLBRIDGE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    settings = make_settings(tmp_path)
    plugins = load_plugins(settings, entry_points=False)
    directory = plugins.get("directory").plugin
    directory.add_contact("Mario Rossi", ["06 1234 5678"], company="ACME")  # type: ignore[union-attr]
    journal = RedisJournal(redis_server.unique_url())
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
        by_key = {a.call_key: a for a in activities}
        assert sorted(by_key) == ["1:00000001", "1:00000002"]
        assert len(activities) == 2
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
