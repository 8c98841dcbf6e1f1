"""What only the SQLite journal has: migrations, the split into two files and their pairing,
WAL mode, and a batch whose writes fail alone.

What every backend must do is the journal contract, which runs against SQLite too
(``tests/journal_redis/test_journal_contract.py``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callbridge.errors import ConfigurationError
from callbridge.journal import DeliveryState, migrations
from callbridge.journal.base import DuplicateOriginateError
from callbridge.journal.factory import open_journal
from callbridge.journal.migrations import EVENTS_MIGRATIONS, LATEST, current_version, migrate
from callbridge.journal.sqlite import SqliteJournal
from callbridge.models import Call, CallState, Direction, Originate
from callbridge.settings import Settings
from callbridge.voispeed.events import CallIncoming, parse_event


def _params(ssn: int, call_id: str = "00000001", **extra: str) -> dict[str, str]:
    params = {
        "ssn_event": str(ssn),
        "call_id": call_id,
        "number": "0612345678",
        "ext": "201",
        "company_id": "1",
    }
    params.update(extra)
    return params


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    j = SqliteJournal(tmp_path / "journal.sqlite3")
    yield j
    j.close()


def _append(journal: SqliteJournal, params: dict[str, str]) -> int:
    result = journal.append_event(parse_event(params), raw=params)
    return result.seq


def _call(key: str, **changes: object) -> Call:
    """A call as an older callbridge stored it, for the migration tests."""
    base: dict[str, object] = {
        "key": key,
        "company_id": "1",
        "user_call_id": key.split(":")[-1],
        "direction": Direction.INBOUND,
        "state": CallState.RINGING,
        "extension": "201",
        "remote_number": "0612345678",
        "remote_e164": "+39612345678",
        "ring_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    }
    base.update(changes)
    return Call.model_validate(base)


def test_migrating_from_v1_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    EVENTS_MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO calls (key, state, started_at, updated_at, data) VALUES (?, ?, 0, 0, ?)",
        ("1:A", "ended", _call("1:A", state=CallState.ENDED).model_dump_json()),
    )
    conn.execute(
        "INSERT INTO calls (key, state, started_at, updated_at, data) VALUES (?, ?, 0, 0, ?)",
        ("1:B", "ringing", _call("1:B").model_dump_json()),
    )
    conn.execute("INSERT INTO cursors (name, seq) VALUES ('dispatcher', 7)")
    conn.close()

    journal = SqliteJournal(path)
    try:
        check = sqlite3.connect(path)
        assert current_version(check) == LATEST
        check.close()
        assert journal.get_cursor("dispatcher") == 7
        # v1 had no settled flag: ended calls count as settled, others stay open.
        assert [c.key for c in journal.list_calls(open_only=True)] == ["1:B"]
        assert journal.append_agent_event("201", "pop", {}).id == 1
    finally:
        journal.close()


def _single_file_v2(path: Path) -> None:
    """A journal as callbridge wrote it before the split: version 2, everything in one file."""
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, EVENTS_MIGRATIONS, target=2)
    params = _params(16, "0000A001")
    conn.execute(
        "INSERT INTO events (received_at, source, dedup_key, raw, kind, parsed) "
        "VALUES (1, 'http', ?, ?, 'CallIncoming', ?)",
        (
            parse_event(params).dedup_key,
            json.dumps(params),
            parse_event(params).model_dump_json(),
        ),
    )
    conn.execute(
        "INSERT INTO calls (key, state, started_at, updated_at, data, settled) "
        "VALUES ('1:0000A001', 'ended', 0, 0, ?, 1)",
        (_call("1:0000A001", state=CallState.ENDED).model_dump_json(),),
    )
    conn.execute("INSERT INTO cursors (name, seq) VALUES ('dispatcher', 1)")
    conn.execute(
        "INSERT INTO deliveries (id, call_key, plugin, action, state, created_at, payload) "
        "VALUES (7, '1:0000A001', 'crm', 'log_call', 'dead', 0, '{}')"
    )
    conn.execute(
        "INSERT INTO agent_events (id, extension, at, kind, data) "
        "VALUES (41, '201', 0, 'pop', '{}')"
    )
    conn.close()


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {name for (name,) in rows if not name.startswith("sqlite_")}
    finally:
        conn.close()


def test_a_single_file_journal_is_split_on_first_open(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    _single_file_v2(path)
    journal = SqliteJournal(path)
    try:
        assert journal.state_path == tmp_path / "journal-state.sqlite3"
        assert _tables(path) == {"meta", "events", "rejected"}
        assert {"calls", "cursors", "deliveries", "agent_events", "originates"} <= _tables(
            journal.state_path
        )
        (event,) = journal.events_after(0)
        assert isinstance(event.event, CallIncoming)
        assert journal.get_cursor("dispatcher") == 1
        assert journal.get_call("1:0000A001") is not None
        (delivery,) = journal.list_deliveries()
        assert (delivery.id, delivery.state) == (7, DeliveryState.DEAD)
        # Ids go on from where the single file left them (SSE clients hold the last one).
        assert journal.append_agent_event("201", "pop", {}).id == 42
    finally:
        journal.close()
    conn = sqlite3.connect(path)
    assert current_version(conn) == LATEST
    conn.close()


def test_a_split_interrupted_after_the_copy_completes_on_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between the copy (state file committed) and the drop: the copy runs again."""
    path = tmp_path / "journal.sqlite3"
    _single_file_v2(path)

    def crash(conn: sqlite3.Connection) -> None:
        raise RuntimeError("power cut")

    with monkeypatch.context() as patch:
        patch.setattr(migrations, "EVENTS_MIGRATIONS", (*EVENTS_MIGRATIONS[:2], crash))
        with pytest.raises(RuntimeError, match="power cut"):
            SqliteJournal(path)
    assert "calls" in _tables(path)  # not dropped yet; the state file has its copy
    journal = SqliteJournal(path)
    try:
        assert [c.key for c in journal.list_calls()] == ["1:0000A001"]
        assert [d.id for d in journal.list_deliveries()] == [7]
        assert _tables(path) == {"meta", "events", "rejected"}
    finally:
        journal.close()


def test_the_split_carries_the_id_counters_over(tmp_path: Path) -> None:
    """Agent messages up to 50 existed and the newest were pruned: ids must not be reused."""
    path = tmp_path / "journal.sqlite3"
    _single_file_v2(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE sqlite_sequence SET seq = 50 WHERE name = 'agent_events'")
    conn.commit()
    conn.close()
    journal = SqliteJournal(path)
    try:
        assert journal.append_agent_event("201", "pop", {}).id == 51
    finally:
        journal.close()


def test_a_state_file_of_another_journal_is_refused(tmp_path: Path) -> None:
    """Its cursor would skip this journal's events: refuse, name the files, change nothing."""
    one, other = tmp_path / "one" / "journal.sqlite3", tmp_path / "other" / "journal.sqlite3"
    for path in (one, other):
        SqliteJournal(path).close()
    other.with_name("journal-state.sqlite3").replace(one.with_name("journal-state.sqlite3"))
    with pytest.raises(ConfigurationError, match="belongs to another journal"):
        SqliteJournal(one)


def test_a_replaced_events_file_beside_a_used_state_file_is_refused(tmp_path: Path) -> None:
    """The events file deleted to start afresh: the old state's cursor would skip events."""
    path = tmp_path / "journal.sqlite3"
    journal = SqliteJournal(path)
    journal.set_cursor("dispatcher", 900)
    journal.close()
    for name in ("journal.sqlite3", "journal.sqlite3-wal", "journal.sqlite3-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    with pytest.raises(ConfigurationError, match=r"move journal-state\.sqlite3 away"):
        SqliteJournal(path)


def test_a_pre_split_backup_is_not_merged_into_a_used_state_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    SqliteJournal(path).close()
    _single_file_v2(tmp_path / "backup.sqlite3")
    (tmp_path / "backup.sqlite3").replace(path)
    with pytest.raises(ConfigurationError, match="another journal's state"):
        SqliteJournal(path)
    assert "calls" in _tables(path)  # the backup is untouched


def test_a_lost_state_file_starts_afresh_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every event is handled again: the documented way back after losing the state file."""
    path = tmp_path / "journal.sqlite3"
    journal = SqliteJournal(path)
    journal.append_event(parse_event(_params(16)), raw=_params(16))
    journal.set_cursor("dispatcher", 1)
    journal.close()
    for name in ("journal-state.sqlite3", "journal-state.sqlite3-wal", "journal-state.sqlite3-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    with caplog.at_level("WARNING"):
        again = SqliteJournal(path)
    try:
        assert again.get_cursor("dispatcher") == 0
        assert "handled again" in caplog.text
    finally:
        again.close()
    SqliteJournal(path).close()  # and the pair is whole again


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        SqliteJournal(path)


def test_wal_mode_and_writable_check(journal: SqliteJournal) -> None:
    journal.check_writable()
    conn = sqlite3.connect(journal.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_failing_write_does_not_undo_its_batch_neighbours(journal: SqliteJournal) -> None:
    origin = Originate(
        external_id="cb-2", user="u", number="1", created_at=datetime(2024, 1, 1, tzinfo=UTC)
    )
    journal.create_originate(origin)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def dup() -> None:
        barrier.wait()
        try:
            journal.create_originate(origin)
            outcomes.append("ok")
        except DuplicateOriginateError:
            outcomes.append("dup")

    def good(i: int) -> None:
        barrier.wait()
        journal.set_cursor(f"c{i}", i)
        outcomes.append("ok")

    threads = [threading.Thread(target=dup) for _ in range(4)]
    threads += [threading.Thread(target=good, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["dup"] * 4 + ["ok"] * 4
    assert [journal.get_cursor(f"c{i}") for i in range(4)] == [0, 1, 2, 3]


def test_open_journal_uses_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    journal = open_journal(settings)
    try:
        assert isinstance(journal, SqliteJournal)
        assert journal.path == tmp_path / "data" / "journal.sqlite3"
    finally:
        journal.close()
    custom = open_journal(Settings(journal=f"sqlite:///{tmp_path / 'x.db'}"))
    custom.close()
    assert (tmp_path / "x.db").exists()
    from callbridge.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="CALLBRIDGE_JOURNAL"):
        open_journal(Settings(journal="postgres://x"))
