"""Which calls were already posted: a tiny SQLite table keyed by the idempotency key.

Chat webhooks have no upsert and no idempotency key of their own, so "exactly one message
per call" needs a memory on our side. A key is written only after the chat accepted the
message; a retry of a delivery that already succeeded finds it and posts nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path


class Ledger:
    """Keys of posted calls, safe to use from the core's delivery threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS posted (key TEXT PRIMARY KEY, posted_at TEXT NOT NULL)"
        )

    def seen(self, key: str) -> bool:
        """Whether the call with this key was already posted."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM posted WHERE key = ?", (key,)).fetchone()
        return row is not None

    def add(self, key: str) -> None:
        """Remember that the call was posted (a repeat is harmless)."""
        now = datetime.now(UTC).isoformat()
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO posted (key, posted_at) VALUES (?, ?)", (key, now)
            )

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
