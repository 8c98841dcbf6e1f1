"""SQLite specifics of the dedup window: the key stays UNIQUE, an older holder retires it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callbridge.journal.migrations import LATEST, current_version
from callbridge.journal.sqlite import SqliteJournal
from callbridge.voispeed.events import parse_event

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
PARAMS = {"ssn_event": "16", "call_id": "00000005", "number": "0612345678", "ext": "201"}


def test_an_older_event_retires_its_key_to_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = SqliteJournal(path, dedup_window=60)
    key = parse_event(PARAMS).dedup_key
    try:
        first = journal.append_event(parse_event(PARAMS), raw=PARAMS, received_at=T0)
        second = journal.append_event(
            parse_event(PARAMS), raw=PARAMS, received_at=T0 + timedelta(minutes=5)
        )
        assert not second.duplicate and second.seq > first.seq
        stored = journal.events_after(0)
        assert [e.dedup_key for e in stored] == [f"{key}/{first.seq}", key]
    finally:
        journal.close()
    # No schema change: the layout version is the one before the window existed.
    conn = sqlite3.connect(path)
    try:
        assert current_version(conn) == LATEST
        index = conn.execute("PRAGMA index_list(events)").fetchall()
        assert any(row[2] == 1 for row in index)  # dedup_key is still UNIQUE
    finally:
        conn.close()


def test_a_failed_insert_leaves_the_holder_its_key(tmp_path: Path) -> None:
    """The retire and the insert are one savepoint: a failing insert undoes the retire."""
    path = tmp_path / "journal.sqlite3"
    journal = SqliteJournal(path, dedup_window=60)
    key = parse_event(PARAMS).dedup_key
    try:
        first = journal.append_event(parse_event(PARAMS), raw=PARAMS, received_at=T0)
        # Make the next insert fail after the retire (a trigger refusing new events).
        conn = sqlite3.connect(path)
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON events "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        conn.commit()
        conn.close()
        with pytest.raises(sqlite3.IntegrityError, match="refused"):
            journal.append_event(
                parse_event(PARAMS), raw=PARAMS, received_at=T0 + timedelta(hours=1)
            )
        (stored,) = journal.events_after(0)
        assert (stored.seq, stored.dedup_key) == (first.seq, key)
    finally:
        journal.close()
