"""Versioned schema of the SQLite journal.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS`` is an ordered list: step
``n`` (1-based) takes a database from version ``n - 1`` to ``n``. A step is never edited once
released; a change to the schema is a new step appended at the end, so every journal on disk,
however old, upgrades by running the steps it has not seen, each in its own transaction.

Times are stored as integer microseconds since the Unix epoch (UTC): exact, compact, and
ordered the same way as the instants they stand for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

Step = Callable[[sqlite3.Connection], None]


def _script(sql: str) -> Step:
    """A step made of plain SQL statements."""

    def run(conn: sqlite3.Connection) -> None:
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)

    return run


_V1 = _script(
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at INTEGER NOT NULL,
        source TEXT NOT NULL,
        dedup_key TEXT NOT NULL UNIQUE,
        raw TEXT NOT NULL,
        kind TEXT NOT NULL,
        parsed TEXT NOT NULL
    );
    CREATE TABLE rejected (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at INTEGER NOT NULL,
        source TEXT NOT NULL,
        remote TEXT,
        reason TEXT NOT NULL,
        raw TEXT NOT NULL
    );
    CREATE TABLE calls (
        key TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX calls_state ON calls(state);
    CREATE INDEX calls_updated_at ON calls(updated_at);
    CREATE INDEX calls_started_at ON calls(started_at);
    CREATE TABLE originates (
        external_id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        call_key TEXT NOT NULL,
        plugin TEXT NOT NULL,
        action TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        next_attempt_at INTEGER,
        last_error TEXT,
        payload TEXT NOT NULL,
        result TEXT,
        UNIQUE (call_key, plugin, action)
    );
    CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at);
    CREATE TABLE cursors (
        name TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    )
    """
)

# v2: the agent event stream (SSE replay), a "settled" flag on calls (the dispatcher has
# acted on the call's end: its deliveries exist, so a restart must not restore it), and the
# time a dead delivery was last retried by hand (its age for max_age counts from there).
_V2 = _script(
    """
    CREATE TABLE agent_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        extension TEXT NOT NULL,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX agent_events_extension ON agent_events(extension, id);
    ALTER TABLE calls ADD COLUMN settled INTEGER NOT NULL DEFAULT 0;
    UPDATE calls SET settled = 1 WHERE state = 'ended';
    CREATE INDEX calls_settled ON calls(settled);
    ALTER TABLE deliveries ADD COLUMN retried_at INTEGER
    """
)

#: Step n takes the schema from version n - 1 to n.
MIGRATIONS: Sequence[Step] = (_V1, _V2)

#: The version a journal has once every step ran.
LATEST = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database (0 for a new file)."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, target: int = LATEST) -> int:
    """Run the missing steps up to ``target``, each in its own transaction; return the version.

    Refuses a database newer than this code knows: running old code on a newer journal could
    silently drop what the newer schema holds.
    """
    version = current_version(conn)
    if version > LATEST:
        raise RuntimeError(
            f"journal schema version {version} is newer than this callbridge ({LATEST}); "
            "upgrade callbridge"
        )
    while version < target:
        step = MIGRATIONS[version]
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        version += 1
    return version
