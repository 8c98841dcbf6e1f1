"""Runs an engine until killed, for the crash test: ``python crash_worker.py DATA_DIR RECORDS_DB``.

Its only plugin writes activities into a SQLite file, idempotently by the record's
idempotency key (as a real connector must), and logs every attempt, so the test can count
both what reached "the CRM" and how often the dispatcher tried.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from pathlib import Path

from engine_helpers import make_settings

from callbridge.engine.engine import Engine
from callbridge.hookspecs import hookimpl
from callbridge.journal.sqlite import SqliteJournal
from callbridge.models import ActivityRef, CallRecord
from callbridge.plugins.manager import load_plugins


class RecordingCrm:
    """log_call into a SQLite table, once per idempotency key; a little slow on purpose."""

    name = "recorder"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.local = threading.local()
        conn = self._conn()
        conn.execute("CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, call_key TEXT)")
        conn.execute("CREATE TABLE IF NOT EXISTS attempts (key TEXT, pid INTEGER)")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            self.local.conn = conn
        return conn

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef:
        key = record.idempotency_key(self.name)
        conn = self._conn()
        conn.execute("INSERT INTO attempts (key, pid) VALUES (?, ?)", (key, _pid()))
        time.sleep(0.01)
        conn.execute(
            "INSERT INTO records (key, call_key) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (key, record.call.key),
        )
        return ActivityRef(record_type="Task", record_id=key)


def _pid() -> int:
    import os

    return os.getpid()


def main() -> None:
    data_dir, records = Path(sys.argv[1]), Path(sys.argv[2])
    settings = make_settings(data_dir, workers=4)
    plugins = load_plugins(
        settings, entry_points=False, builtins=False, extra=[RecordingCrm(records)]
    )
    journal = SqliteJournal(data_dir / "journal.sqlite3")
    engine = Engine(settings, journal=journal, plugins=plugins, poll_interval=0.01)
    engine.start()
    print("ready", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
