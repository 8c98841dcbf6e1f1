"""A small SQLite file of what the connector wrote to HubSpot, keyed by idempotency key.

HubSpot's search lags behind its writes by seconds (sometimes more), so "search before
create" cannot prove that a call engagement does not exist yet. The ledger closes that gap
on our side: the intent is written *before* the create request (``pending``) and the
engagement id right after it (``written``). A retry that finds ``written`` returns at once;
one that finds ``pending`` knows the previous attempt may have reached HubSpot and must look
there first (see ``activities``). The file survives restarts; it is per connector, so a
plugin instance started later (or another process on the same data dir) sees the same rows.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS engagements (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('pending', 'clear', 'written')),
    engagement_id TEXT,
    contact_id TEXT,
    attempted_at REAL NOT NULL,
    updated_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Entry:
    """One row: where a key stands."""

    key: str
    state: str
    engagement_id: str | None
    contact_id: str | None
    attempted_at: float


class Ledger:
    """Thread-safe access to the ledger file (one connection, one lock, WAL)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(SCHEMA)

    def get(self, key: str) -> Entry | None:
        """The row for ``key``, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT key, state, engagement_id, contact_id, attempted_at "
                "FROM engagements WHERE key = ?",
                (key,),
            ).fetchone()
        return Entry(*row) if row else None

    def mark_pending(self, key: str, now: float | None = None) -> None:
        """An attempt to create is about to be sent (durable before the request)."""
        stamp = time.time() if now is None else now
        with self._lock:
            self._db.execute(
                "INSERT INTO engagements (key, state, attempted_at, updated_at) "
                "VALUES (?, 'pending', ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "state = 'pending', attempted_at = excluded.attempted_at, "
                "updated_at = excluded.updated_at WHERE engagements.state != 'written'",
                (key, stamp, stamp),
            )

    def mark_clear(self, key: str) -> None:
        """HubSpot answered that nothing was created: the next attempt need not wait."""
        with self._lock:
            self._db.execute(
                "UPDATE engagements SET state = 'clear', updated_at = ? "
                "WHERE key = ? AND state = 'pending'",
                (time.time(), key),
            )

    def mark_written(self, key: str, engagement_id: str) -> None:
        """The engagement exists in HubSpot with this id."""
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO engagements (key, state, engagement_id, attempted_at, updated_at) "
                "VALUES (?, 'written', ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "state = 'written', engagement_id = excluded.engagement_id, "
                "updated_at = excluded.updated_at",
                (key, engagement_id, now, now),
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

    def count(self) -> int:
        """Rows in the ledger (for `callbridge hubspot status` and tests)."""
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM engagements").fetchone()
        return int(n)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()
