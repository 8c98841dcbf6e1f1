"""Versioned schemas of the SQLite journal's two files.

The journal is an *events* file (what the PBX sent: accepted events and rejected requests)
and a *state* file (what the engine made of them: calls, deliveries, cursors, originates,
the agent stream); ``sqlite/__init__.py`` says why. Each file's schema version lives in its
``PRAGMA user_version``. ``EVENTS_MIGRATIONS`` and ``STATE_MIGRATIONS`` are ordered lists:
step ``n`` (1-based) takes a file from version ``n - 1`` to ``n``. A step is never edited once
released; a change to a schema is a new step appended at the end, so every journal on disk,
however old, upgrades by running the steps it has not seen, each in its own transaction.

Journals up to version 2 were one file. Version 3 of the events file moves the state tables
out: ``migrate_events`` copies their rows into the state file, then step 3 drops them.

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

# v3: the state tables live in the state file (their rows were copied by ``migrate_events``).
_V3 = _script(
    """
    DROP TABLE agent_events;
    DROP TABLE calls;
    DROP TABLE cursors;
    DROP TABLE deliveries;
    DROP TABLE originates
    """
)

# v4: the company (its name) of every event, and of rejected requests where known, so that
# one company's data can be exported and purged (``callbridge companies``). Rows from before
# belong to the one company there was (``default``); a refused request's is unknown (NULL).
_V4 = _script(
    """
    ALTER TABLE events ADD COLUMN company TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX events_company ON events(company, seq);
    ALTER TABLE rejected ADD COLUMN company TEXT;
    CREATE INDEX rejected_company ON rejected(company, id)
    """
)

#: Step n takes the events file from version n - 1 to n.
EVENTS_MIGRATIONS: Sequence[Step] = (_V1, _V2, _V3, _V4)

#: The version an events file has once every step ran.
LATEST = len(EVENTS_MIGRATIONS)

# The state file starts where the single-file journal's v2 left its tables.
_S1 = _script(
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE calls (
        key TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        data TEXT NOT NULL,
        settled INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX calls_state ON calls(state);
    CREATE INDEX calls_updated_at ON calls(updated_at);
    CREATE INDEX calls_started_at ON calls(started_at);
    CREATE INDEX calls_settled ON calls(settled);
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
        retried_at INTEGER,
        UNIQUE (call_key, plugin, action)
    );
    CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at);
    CREATE TABLE cursors (
        name TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    );
    CREATE TABLE agent_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        extension TEXT NOT NULL,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX agent_events_extension ON agent_events(extension, id)
    """
)

# s2: two indexes no query uses (prune filters on ``settled`` first). Each was rewritten by
# every save of a call: pages in the state WAL that the ingress's fsyncs then wait behind.
_S2 = _script(
    """
    DROP INDEX calls_state;
    DROP INDEX calls_updated_at
    """
)

# s3: click-to-call correlation, expiry and repeated clicks ask for the originates of the
# last minutes (``recent_originates``); without an index each asks reads every originate
# kept (100,000 of them: 45-190 ms a query on a busy machine), and expiry asks every second.
_S3 = _script(
    """
    CREATE INDEX originates_created_at ON originates(created_at)
    """
)

# s4: the agents' wrap-ups (notes, outcome, chosen record), the latest revision per call.
_S4 = _script(
    """
    CREATE TABLE wrapups (
        call_key TEXT PRIMARY KEY,
        revision INTEGER NOT NULL,
        saved_at INTEGER NOT NULL,
        data TEXT NOT NULL
    )
    """
)

# s5: where the PBX recorded a call (a recording reference), the latest per call.
_S5 = _script(
    """
    CREATE TABLE recordings (
        call_key TEXT PRIMARY KEY,
        reference TEXT NOT NULL,
        saved_at INTEGER NOT NULL
    )
    """
)

# s6: the company of every call, originate, wrap-up, recording, delivery and agent message
# (see v4).
# The agents' streams are per company (two companies may both have an extension 201), so
# their index leads with the company. ``save_call`` never rewrites a call's company, so the
# calls' new index costs nothing on the saves that follow the first (see s2).
_S6 = _script(
    """
    ALTER TABLE calls ADD COLUMN company TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX calls_company ON calls(company);
    ALTER TABLE originates ADD COLUMN company TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX originates_company ON originates(company);
    ALTER TABLE wrapups ADD COLUMN company TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX wrapups_company ON wrapups(company);
    ALTER TABLE recordings ADD COLUMN company TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX recordings_company ON recordings(company);
    ALTER TABLE deliveries ADD COLUMN company TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX deliveries_company ON deliveries(company);
    ALTER TABLE agent_events ADD COLUMN company TEXT NOT NULL DEFAULT 'default';
    DROP INDEX agent_events_extension;
    CREATE INDEX agent_events_company ON agent_events(company, extension, id)
    """
)

#: Step n takes the state file from version n - 1 to n.
STATE_MIGRATIONS: Sequence[Step] = (_S1, _S2, _S3, _S4, _S5, _S6)

#: The tables step 3 moves from the events file to the state file, with their columns.
_MOVED: dict[str, str] = {
    "agent_events": "id, extension, at, kind, data",
    "calls": "key, state, started_at, updated_at, data, settled",
    "cursors": "name, seq",
    "deliveries": (
        "id, call_key, plugin, action, state, attempts, created_at, next_attempt_at, "
        "last_error, payload, result, retried_at"
    ),
    "originates": "external_id, created_at, state, data",
}


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database (0 for a new file)."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, steps: Sequence[Step], target: int | None = None) -> int:
    """Run the missing ``steps`` up to ``target`` (all), each in its own transaction.

    Returns the version reached. Refuses a database newer than this code knows: running old
    code on a newer journal could silently drop what the newer schema holds. Safe when two
    processes open a journal at once (``serve --engine none`` and ``callbridge engine``
    started together): each step reads the version again under the write lock, so a step the
    other process ran meanwhile is not run twice.
    """
    target = len(steps) if target is None else target
    while True:
        version = _checked_version(conn, steps)
        if version >= target:
            return version
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _checked_version(conn, steps)
            if version < target:
                steps[version](conn)
                conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _checked_version(conn: sqlite3.Connection, steps: Sequence[Step]) -> int:
    version = current_version(conn)
    if version > len(steps):
        raise RuntimeError(
            f"journal schema version {version} is newer than this callbridge ({len(steps)}); "
            "upgrade callbridge"
        )
    return version


#: The moved tables whose ids must go on counting (``AUTOINCREMENT``: ids are never reused).
_COUNTERS = ("agent_events", "deliveries")


class StateFileTakenError(RuntimeError):
    """A single-file journal cannot be split into a state file that holds another journal."""


def migrate_events(conn: sqlite3.Connection, state_path: str, *, state_taken: bool) -> int:
    """Bring an events file to ``LATEST``; a single-file journal's state moves to ``state_path``.

    The state file must already be migrated; ``state_taken`` says it already belongs to a
    journal (it has a journal id), and then a single-file journal is refused rather than
    merged into it: its rows would lose against the other journal's. The copy is its own
    transaction, before the one that drops the tables: a crash between the two leaves both
    copies (and no id yet), and the next start copies again (``INSERT OR IGNORE`` keeps what
    is there) and then drops. Ids and id counters are copied, so the agent stream and the
    deliveries keep counting from where they were.
    """
    fresh = current_version(conn) == 0  # a new file: nothing to move
    version = migrate(conn, EVENTS_MIGRATIONS, target=min(2, LATEST))
    if version == 2 and not fresh and state_taken:
        raise StateFileTakenError(
            f"{state_path} already holds another journal's state; move it away to let this "
            "single-file journal (from before the events/state split) be split into a new one"
        )
    if version == 2 and not fresh:
        conn.execute("ATTACH DATABASE ? AS state", (state_path,))
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have split the file since we looked.
                if current_version(conn) == 2:
                    for table, columns in _MOVED.items():
                        conn.execute(
                            f"INSERT OR IGNORE INTO state.{table} ({columns}) "  # noqa: S608
                            f"SELECT {columns} FROM main.{table}"
                        )
                    for table in _COUNTERS:
                        _copy_counter(conn, table)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.execute("DETACH DATABASE state")
    return migrate(conn, EVENTS_MIGRATIONS)


def _copy_counter(conn: sqlite3.Connection, table: str) -> None:
    """Carry ``table``'s AUTOINCREMENT counter over (its newest rows may have been pruned)."""
    row = conn.execute("SELECT seq FROM main.sqlite_sequence WHERE name = ?", (table,)).fetchone()
    if row is None:
        return
    moved = conn.execute(
        "UPDATE state.sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?", (row[0], table)
    ).rowcount
    if not moved:
        conn.execute("INSERT INTO state.sqlite_sequence (name, seq) VALUES (?, ?)", (table, row[0]))
