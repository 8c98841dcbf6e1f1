"""The engine prunes the journal by itself, in a thread of its own, only what the dispatcher
has handled and only what is older than ``CALLBRIDGE_RETENTION_DAYS``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine_helpers import Crm, incoming, local_hangup, make_settings

from callbridge.engine.dispatcher import CURSOR_NAME
from callbridge.engine.engine import Engine
from callbridge.journal.sqlite import SqliteJournal
from callbridge.plugins.manager import load_plugins
from callbridge.testing import wait_until


def _engine(tmp_path: Path, retention_days: float) -> tuple[Engine, SqliteJournal, Crm]:
    settings = make_settings(tmp_path).model_copy(update={"retention_days": retention_days})
    crm = Crm()
    plugins = load_plugins(settings, entry_points=False, builtins=False, extra=[crm])
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    engine = Engine(
        settings,
        journal=journal,
        plugins=plugins,
        tick_interval=0.05,
        poll_interval=0.01,
        prune_interval=0.05,
    )
    return engine, journal, crm


def test_the_engine_prunes_old_handled_events_on_its_own(tmp_path: Path) -> None:
    engine, journal, crm = _engine(tmp_path, retention_days=30)
    old = datetime.now(UTC) - timedelta(days=40)
    try:
        engine.start()
        engine.ingest(incoming("00000001"), received_at=old)
        engine.ingest(local_hangup("00000001"), received_at=old)
        last = engine.ingest(incoming("00000002")).seq  # young: kept
        wait_until(lambda: journal.get_cursor(CURSOR_NAME) == last, "the dispatcher")

        wait_until(lambda: [s.seq for s in journal.events_after(0)] == [last], "a prune")
        wait_until(lambda: "callbridge:1:00000001:crm" in crm.by_call, "the old call's log")
    finally:
        engine.stop()
        journal.close()


def test_retention_zero_keeps_everything(tmp_path: Path) -> None:
    engine, journal, _ = _engine(tmp_path, retention_days=0)
    old = datetime.now(UTC) - timedelta(days=4000)
    try:
        engine.start()
        first = engine.ingest(incoming("00000001"), received_at=old).seq
        last = engine.ingest(incoming("00000002"), received_at=old).seq
        wait_until(lambda: journal.get_cursor(CURSOR_NAME) == last, "the dispatcher")
        assert engine.prune() is None
        assert [s.seq for s in journal.events_after(0)] == [first, last]
    finally:
        engine.stop()
        journal.close()
