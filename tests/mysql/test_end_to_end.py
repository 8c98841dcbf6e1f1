"""Simulator -> monitor tables -> triggers -> outbox -> MysqlSource -> engine: pops, activities."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mysql_helpers import install

from callbridge.engine.engine import Engine
from callbridge.hookspecs import hookimpl
from callbridge.journal.sqlite import SqliteJournal
from callbridge.models import ActivityRef, Call, CallRecord, Contact, ScreenPop
from callbridge.mysql.sink import MysqlSink, SinkUser
from callbridge.mysql.source import MysqlSource
from callbridge.plugins.manager import load_plugins
from callbridge.settings import DispatchSettings, RecordingSettings, Settings, TrackerSettings
from callbridge.sim.engine import CallEngine
from callbridge.sim.model import default_directory
from callbridge.testing import wait_until

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

CALLER = "+390612345678"


class Crm:
    """A CRM plugin that knows one contact and records activities by idempotency key."""

    name = "crm"

    def __init__(self) -> None:
        self.pops: list[ScreenPop] = []
        self.logged: dict[str, CallRecord] = {}
        self.lock = threading.Lock()

    @hookimpl
    def lookup_contact(self, number: str, call: Call) -> Contact | None:
        if number == CALLER:
            return Contact(record_id="C1", name="Anna Bianchi", company="ACME")
        return None

    @hookimpl
    def screen_pop(self, pop: ScreenPop) -> None:
        with self.lock:
            self.pops.append(pop)

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef | None:
        with self.lock:
            self.logged[record.idempotency_key(self.name)] = record
        return ActivityRef(record_type="Task", record_id=f"T-{record.call.user_call_id}")


@contextlib.contextmanager
def _pipeline(
    mariadb: Any, database: str, tmp_path: Path, plugin: object, **settings: Any
) -> Iterator[tuple[Any, CallEngine, Engine, MysqlSink]]:
    """The simulator writing the monitor tables, the triggers, the source and an engine
    with ``plugin``: (connection, simulator, engine, sink); all stopped on exit."""
    conn = mariadb.connect(database)
    install(conn)
    directory = default_directory()
    sink = MysqlSink(mariadb.url(database))
    sink.load_users(
        SinkUser(u.id, u.extension, u.company_id, u.login, u.name, u.surname)
        for u in directory.users
    )
    pbx = CallEngine(directory, sink)
    config = Settings(
        data_dir=tmp_path,
        dispatch=DispatchSettings(workers=2, backoff_initial=0.01, backoff_max=0.05),
        tracker=TrackerSettings(group_window=0.0),
        **settings,
    )
    plugins = load_plugins(config, entry_points=False, builtins=False, extra=[plugin])
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    engine = Engine(
        config, journal=journal, plugins=plugins, tick_interval=0.05, poll_interval=0.01
    )
    source = MysqlSource(mariadb.url(database), journal, poll_interval=0.05)
    stop = threading.Event()
    engine.start()
    thread = source.start(stop)
    try:
        yield conn, pbx, engine, sink
    finally:
        stop.set()
        thread.join(timeout=30)
        engine.stop()
        journal.close()
        sink.close()
        conn.close()


def test_calls_written_by_the_simulator_pop_and_log_once(
    mariadb: Any, database: str, tmp_path: Path
) -> None:
    crm = Crm()
    with _pipeline(mariadb, database, tmp_path, crm) as (_, pbx, engine, sink):
        answered = pbx.incoming_call(CALLER, "201", caller_name="Anna Bianchi")
        wait_until(lambda: any(p.call.user_call_id for p in crm.pops), "the ringing pop")
        pbx.answer(answered)
        pbx.hangup(answered, by="remote")
        missed = pbx.incoming_call("+390698765432", "202")
        pbx.reject(missed)
        wait_until(lambda: len(crm.logged) >= 2, "two activities", timeout=60)
        assert engine.wait_idle(30)
        assert len(crm.logged) == 2  # one activity per finished call
        records = sorted(crm.logged.values(), key=lambda r: r.call.extension or "")
        assert [r.call.extension for r in records] == ["201", "202"]
        first = records[0]
        assert first.call.remote_number == CALLER
        assert first.contacts["crm"].record_id == "C1"
        ringing = next(p for p in crm.pops if p.call.extension == "201")
        assert ringing.contacts["crm"].record_id == "C1"
        assert first.call.answer_at is not None
        assert records[1].call.answer_at is None  # the missed one
        assert sink.failures == []


def test_a_call_the_tables_say_is_recorded_carries_the_recording(
    mariadb: Any, database: str, tmp_path: Path
) -> None:
    """``recording`` of monitor_user_calls set on the PBX (CallRecStart) -> ``cb_recording``
    on the events -> the call's default reference and link on its record."""
    crm = Crm()
    recordings = RecordingSettings(
        url_template="https://pbx.example/{company_id}/{reference}.wav",
        reference="rec-{call_id}",
    )
    with _pipeline(mariadb, database, tmp_path, crm, recordings=recordings) as running:
        conn, pbx, engine, sink = running
        recorded = pbx.incoming_call(CALLER, "201", caller_name="Anna Bianchi")
        pbx.answer(recorded)
        leg = recorded.legs[0].user_call_id
        # The user call's "recording begun" flag, as the PBX sets it.
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE monitor_user_calls SET recording = 1 WHERE usercallid = %s",
                (int(leg, 16),),
            )
        conn.commit()
        pbx.hangup(recorded, by="remote")
        plain = pbx.incoming_call("+390698765432", "202")
        pbx.answer(plain)
        pbx.hangup(plain, by="remote")
        wait_until(lambda: len(crm.logged) >= 2, "two activities", timeout=60)
        assert engine.wait_idle(30)
        by_ext = {r.call.extension: r for r in crm.logged.values()}
        first, second = by_ext["201"], by_ext["202"]
        assert (first.call.recorded, first.recording) == (True, f"rec-{leg}")
        company = first.call.company_id
        assert first.recording_url == f"https://pbx.example/{company}/rec-{leg}.wav"
        assert (second.call.recorded, second.recording, second.recording_url) == (
            False,
            None,
            None,
        )
        assert sink.failures == []
