"""A small SQLite file of the activities a connector wrote, keyed by idempotency key.

Shared by connectors whose CRM has no idempotent create (HubSpot's call engagements,
Pipedrive's call logs): "search before create" cannot prove that an activity does not exist
yet (HubSpot's search lags behind its writes; Pipedrive's call logs carry no external id).
The ledger closes that gap on our side: the intent is written *before* the create request
(``pending``) and the CRM's id right after it (``written``). A retry that finds ``written``
returns at once; one that finds ``pending`` knows the previous attempt may have reached the
CRM and must look there first. The file survives restarts; it is per connector, so a plugin
instance started later (or another process on the same data dir) sees the same rows.

The table and column names (``engagements``, ``engagement_id``) are HubSpot's, where the
ledger began: files written by earlier versions open unchanged.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .settings import default_data_dir

if TYPE_CHECKING:
    from .models import CallRecord

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS engagements (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('pending', 'clear', 'written')),
    engagement_id TEXT,
    contact_id TEXT,
    attempted_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    signature TEXT
)
"""
#: Things an operator should know about (an optional API refused), for ``callbridge plugins``:
#: the engine writes them, the command (another process) reads them.
NOTES_SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    topic TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class LedgerEntry:
    """One row: where a key stands (``engagement_id``: the CRM's id of the activity)."""

    key: str
    state: str
    engagement_id: str | None
    contact_id: str | None
    attempted_at: float
    #: ``CallRecord.signature`` of the call the row is for (None in rows of older versions).
    signature: str | None = None


class ActivityLedger:
    """Thread-safe access to the ledger file (one connection, one lock, WAL)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(SCHEMA)
        self._db.execute(NOTES_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(engagements)")}
        if "signature" not in columns:  # a ledger of an older version
            self._db.execute("ALTER TABLE engagements ADD COLUMN signature TEXT")

    def get(self, key: str) -> LedgerEntry | None:
        """The row for ``key``, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT key, state, engagement_id, contact_id, attempted_at, signature "
                "FROM engagements WHERE key = ?",
                (key,),
            ).fetchone()
        return LedgerEntry(*row) if row else None

    def entry_for(self, record: CallRecord, plugin: str) -> tuple[str, LedgerEntry | None]:
        """The key ``plugin`` logs ``record`` under, and its row. A row of another call under
        the call's key (a PBX id reused after the journal forgot the first call) sends this
        call to its alternate key: never adopt another call's activity (issue 17)."""
        key = record.idempotency_key(plugin)
        entry = self.get(key)
        if entry is not None and entry.signature not in (None, record.signature):
            log.warning(
                "%s: the ledger holds another call under %s; logging call %s under its "
                "alternate key",
                plugin,
                key,
                record.call.key,
            )
            key = record.idempotency_key(plugin, alternate=True)
            entry = self.get(key)
        return key, entry

    def mark_pending(
        self, key: str, now: float | None = None, *, signature: str | None = None
    ) -> None:
        """An attempt to create is about to be sent (durable before the request)."""
        stamp = time.time() if now is None else now
        with self._lock:
            self._db.execute(
                "INSERT INTO engagements (key, state, attempted_at, updated_at, signature) "
                "VALUES (?, 'pending', ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "state = 'pending', attempted_at = excluded.attempted_at, "
                "updated_at = excluded.updated_at, "
                "signature = COALESCE(excluded.signature, engagements.signature) "
                "WHERE engagements.state != 'written'",
                (key, stamp, stamp, signature),
            )

    def mark_clear(self, key: str) -> None:
        """The CRM answered that nothing was created: the next attempt need not wait."""
        with self._lock:
            self._db.execute(
                "UPDATE engagements SET state = 'clear', updated_at = ? "
                "WHERE key = ? AND state = 'pending'",
                (time.time(), key),
            )

    def mark_written(self, key: str, engagement_id: str, *, signature: str | None = None) -> None:
        """The activity exists in the CRM with this id."""
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO engagements "
                "(key, state, engagement_id, attempted_at, updated_at, signature) "
                "VALUES (?, 'written', ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "state = 'written', engagement_id = excluded.engagement_id, "
                "updated_at = excluded.updated_at, "
                "signature = COALESCE(excluded.signature, engagements.signature)",
                (key, engagement_id, now, now, signature),
            )

    def set_contact(self, key: str, contact_id: str) -> None:
        """Remember the contact created for this call's unknown caller."""
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO engagements (key, state, contact_id, attempted_at, updated_at) "
                "VALUES (?, 'clear', ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "contact_id = excluded.contact_id, updated_at = excluded.updated_at",
                (key, contact_id, now, now),
            )

    def set_note(self, topic: str, text: str) -> bool:
        """Keep (or refresh) a note for the operator; True when there was none on ``topic``."""
        with self._lock:
            row = self._db.execute("SELECT text FROM notes WHERE topic = ?", (topic,)).fetchone()
            self._db.execute(
                "INSERT INTO notes (topic, text, at) VALUES (?, ?, ?) ON CONFLICT(topic) "
                "DO UPDATE SET text = excluded.text, at = excluded.at",
                (topic, text, time.time()),
            )
            return row is None

    def clear_note(self, topic: str) -> None:
        """The cause of a note is gone (the optional API answers again)."""
        with self._lock:
            self._db.execute("DELETE FROM notes WHERE topic = ?", (topic,))

    def notes(self) -> list[str]:
        """The notes kept, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT text FROM notes ORDER BY at").fetchall()
        return [str(row[0]) for row in rows]

    def count(self) -> int:
        """Rows in the ledger (for status commands and tests)."""
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM engagements").fetchone()
        return int(n)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()


class LazyLedger:
    """A connector's ``ActivityLedger``: found in the data directory, opened on first use
    and closed at shutdown.

    A connector must not create files at import or ``configure`` time (``callbridge plugins``
    configures every connector, and may run as another user), and the engine calls it from
    several threads; so the file is opened under a lock the first time a delivery needs it.
    The data directory is the connector's own setting, else the core's (``data_dir``, set at
    ``configure``/``startup``), else ``CALLBRIDGE_DATA_DIR``, else the default.
    """

    def __init__(self, file_name: str, data_dir: Path | None = None) -> None:
        self.file_name = file_name
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._ledger: ActivityLedger | None = None

    def place(self, own: Path | None, core: str | Path | None) -> None:
        """Keep the file in the connector's own data directory (its ``DATA_DIR`` setting)
        when it has one, else in the core's (given at ``configure`` and again at
        ``startup``); with neither, ``path`` falls back to the environment."""
        self.data_dir = own if own is not None else Path(core) if core is not None else None

    @property
    def path(self) -> Path:
        """Where the ledger file is (or will be)."""
        base = self.data_dir
        if base is None:
            env = os.environ.get("CALLBRIDGE_DATA_DIR")
            base = Path(env) if env else default_data_dir()
        return base / self.file_name

    def open(self) -> ActivityLedger:
        """The ledger, opened (and its file created) on the first call."""
        with self._lock:
            if self._ledger is None:
                self._ledger = ActivityLedger(self.path)
            return self._ledger

    def notes(self) -> list[str]:
        """The ledger's notes for the operator; nothing is created when there is no file yet
        (the ``callbridge plugins`` command reads what the engine, another process, wrote)."""
        with self._lock:
            opened = self._ledger is not None
        if not opened and not self.path.exists():
            return []
        return self.open().notes()

    def close(self) -> None:
        """Close the file (at shutdown); the next ``open`` opens it again."""
        with self._lock:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None
