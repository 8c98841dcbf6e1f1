"""The directory's SQLite file: one connection per thread, kept, and write transactions.

``DirectoryPlugin`` is built on it; it knows nothing of contacts or activities.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class DirectoryDatabase:
    """Where the directory keeps its file and this thread's connection to it."""

    _path: Path | None
    _local: threading.local

    @property
    def path(self) -> Path:
        """The SQLite file."""
        if self._path is None:
            raise RuntimeError("the directory is not configured (call configure or open)")
        return self._path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection to the file, opened once and kept.

        Opening a connection (and its pragmas) cost more than the lookup itself: under load
        the directory spent most of its time connecting.
        """
        connections: dict[Path, sqlite3.Connection] = self._local.__dict__.setdefault(
            "connections", {}
        )
        db = connections.get(self.path)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=30000")
            connections[self.path] = db
        yield db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: all or nothing."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
