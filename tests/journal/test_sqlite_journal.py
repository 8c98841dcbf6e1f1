"""The SQLite journal against real files: durability, dedup, migrations, concurrency."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callbridge.errors import ConfigurationError
from callbridge.journal import DeliveryState, migrations
from callbridge.journal.factory import open_journal
from callbridge.journal.migrations import EVENTS_MIGRATIONS, LATEST, current_version, migrate
from callbridge.journal.sqlite import JournalClosedError, SqliteJournal
from callbridge.models import Call, CallState, CrmContext, Direction, Originate
from callbridge.settings import Settings
from callbridge.voispeed.events import CallAnswered, CallIncoming, parse_event


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


def test_append_is_durable_across_reopen_and_typed(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = SqliteJournal(path)
    received = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    params = _params(16, identity="Mario|Rossi|Sales|0|0")
    result = journal.append_event(
        parse_event(params), raw=params, source="mysql", received_at=received
    )
    assert result.duplicate is False
    journal.close()

    again = SqliteJournal(path)
    try:
        (stored,) = again.events_after(0)
        assert stored.seq == result.seq
        assert stored.source == "mysql"
        assert stored.received_at == received
        assert stored.raw == params
        assert isinstance(stored.event, CallIncoming)
        assert stored.event == parse_event(params)
        assert stored.event.identity is not None
        assert stored.event.identity.surname == "Rossi"
    finally:
        again.close()


def test_duplicate_append_returns_the_original_and_changes_nothing(
    journal: SqliteJournal,
) -> None:
    first = journal.append_event(parse_event(_params(16)), raw=_params(16))
    second = _append(journal, _params(18))
    repeat = journal.append_event(parse_event(_params(16)), raw=_params(16), source="other")
    assert repeat.duplicate is True
    assert repeat.seq == first.seq
    events = journal.events_after(0)
    assert [e.seq for e in events] == [first.seq, second]
    assert events[0].source == "http"
    assert isinstance(events[1].event, CallAnswered)


def test_events_after_pages_in_order(journal: SqliteJournal) -> None:
    seqs = [_append(journal, _params(16, call_id=f"{i:08X}")) for i in range(1, 12)]
    assert seqs == sorted(seqs)
    assert [e.seq for e in journal.events_after(seqs[3], limit=4)] == seqs[4:8]
    assert journal.events_after(seqs[-1]) == []
    assert journal.last_seq() == seqs[-1]


def test_cursor_defaults_to_zero_and_persists(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite3")
    assert journal.get_cursor("dispatcher") == 0
    journal.set_cursor("dispatcher", 42)
    journal.set_cursor("dispatcher", 43)
    journal.close()
    again = SqliteJournal(tmp_path / "j.sqlite3")
    assert again.get_cursor("dispatcher") == 43
    assert again.get_cursor("other") == 0
    again.close()


def test_concurrent_appends_from_many_threads_are_all_durable(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = SqliteJournal(path)
    threads, per_thread = 16, 40
    results: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(per_thread):
                params = _params(16, call_id=f"{t:04X}{i:04X}")
                seq = _append(journal, params)
                with lock:
                    results.append(seq)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    assert len(set(results)) == threads * per_thread
    journal.close()

    # Read back with a plain connection: what was acknowledged is on disk.
    conn = sqlite3.connect(path)
    (count,) = conn.execute("SELECT COUNT(*) FROM events").fetchone()
    conn.close()
    assert count == threads * per_thread


def test_rejected_requests_newest_first(journal: SqliteJournal) -> None:
    a = journal.record_rejected(raw="ssn_event=x", reason="ssn_event: expected an integer")
    b = journal.record_rejected(raw="", reason="missing token", remote="10.0.0.9", source="http")
    listed = journal.list_rejected()
    assert [r.id for r in listed] == [b, a]
    assert listed[0].remote == "10.0.0.9"
    assert listed[1].reason.startswith("ssn_event")


def _call(key: str = "1:00000001", **changes: object) -> Call:
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


def test_calls_save_get_list_and_settle(journal: SqliteJournal) -> None:
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    journal.save_call(_call("1:A", ring_at=t0))
    journal.save_call(_call("1:B", ring_at=t0 + timedelta(minutes=1)))
    journal.save_call(_call("1:A", ring_at=t0, state=CallState.ANSWERED, answer_at=t0))
    got = journal.get_call("1:A")
    assert got is not None
    assert got.state is CallState.ANSWERED
    assert journal.get_call("1:nope") is None
    assert [c.key for c in journal.list_calls()] == ["1:B", "1:A"]
    assert [c.key for c in journal.list_calls(limit=1)] == ["1:B"]

    journal.save_call(_call("1:B", state=CallState.ENDED), settled=True)
    assert [c.key for c in journal.list_calls(open_only=True)] == ["1:A"]
    # A settled call stays settled even when saved again without the flag.
    journal.save_call(_call("1:B", state=CallState.ENDED))
    assert journal.is_settled("1:B")
    assert [c.key for c in journal.list_calls(open_only=True)] == ["1:A"]


def test_originates(journal: SqliteJournal) -> None:
    origin = Originate(
        external_id="cb-1",
        user="auth-mario@example",
        extension="201",
        number="+39612345678",
        crm=CrmContext(connector="directory", record_type="Contact", record_id="7"),
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
    )
    journal.create_originate(origin)
    with pytest.raises(sqlite3.IntegrityError):
        journal.create_originate(origin)
    assert journal.get_originate("cb-1") == origin
    updated = journal.update_originate("cb-1", state="ringing", user_call_id="00000042")
    assert updated is not None
    assert updated.state == "ringing"
    assert journal.get_originate("cb-1") == updated
    assert journal.update_originate("nope", state="x") is None
    with pytest.raises(ValueError, match="no_such_field"):
        journal.update_originate("cb-1", no_such_field=1)
    assert journal.get_originate("cb-1") == updated


def test_delivery_state_machine(journal: SqliteJournal) -> None:
    d = journal.enqueue_delivery(call_key="1:A", plugin="crm", action="log_call", payload={"x": 1})
    assert d.state is DeliveryState.PENDING
    assert d.attempts == 0
    same = journal.enqueue_delivery(
        call_key="1:A", plugin="crm", action="log_call", payload={"x": 2}
    )
    assert same.id == d.id
    assert same.payload == {"x": 1}
    other = journal.enqueue_delivery(call_key="1:A", plugin="b", action="log_call", payload={})

    now = datetime.now(UTC) + timedelta(seconds=1)
    assert {x.id for x in journal.due_deliveries(now)} == {d.id, other.id}

    later = now + timedelta(minutes=5)
    journal.fail_delivery(d.id, error="RetryLater: busy", next_attempt_at=later)
    failed = journal.get_delivery(d.id)
    assert failed is not None
    assert failed.attempts == 1
    assert failed.last_error == "RetryLater: busy"
    assert failed.next_attempt_at == later
    assert [x.id for x in journal.due_deliveries(now)] == [other.id]
    assert {x.id for x in journal.due_deliveries(later)} == {d.id, other.id}
    assert [x.id for x in journal.due_deliveries(later, plugin="b")] == [other.id]

    journal.complete_delivery(d.id, {"record_id": "T1"})
    done = journal.get_delivery(d.id)
    assert done is not None
    assert done.state is DeliveryState.DONE
    assert done.result == {"record_id": "T1"}
    assert done.attempts == 2
    # Completing or failing a done delivery changes nothing.
    journal.complete_delivery(d.id, {"record_id": "T2"})
    journal.fail_delivery(d.id, error="late", next_attempt_at=None)
    assert journal.get_delivery(d.id) == done

    journal.fail_delivery(other.id, error="PermanentError: bad", next_attempt_at=None)
    dead = journal.list_deliveries(state=DeliveryState.DEAD)
    assert [x.id for x in dead] == [other.id]
    assert journal.due_deliveries(later) == []
    assert journal.retry_delivery(other.id) is True
    assert journal.retry_delivery(other.id) is False
    assert journal.retry_delivery(d.id) is False
    revived = journal.get_delivery(other.id)
    assert revived is not None
    assert revived.state is DeliveryState.PENDING
    assert revived.attempts == 0
    assert revived.retried_at is not None
    assert [x.id for x in journal.list_deliveries(call_keys=["1:A"])] == [other.id, d.id]
    assert journal.list_deliveries(call_keys=[]) == []
    assert journal.get_delivery(999) is None


def test_agent_events_replay(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite3")
    a = journal.append_agent_event("201", "pop", {"state": "ringing"})
    journal.append_agent_event("202", "pop", {"state": "ringing"})
    c = journal.append_agent_event("201", "call", {"state": "answered"})
    journal.close()
    again = SqliteJournal(tmp_path / "j.sqlite3")
    try:
        replay = again.agent_events_after("201", 0)
        assert [(e.id, e.kind, e.data) for e in replay] == [
            (a.id, "pop", {"state": "ringing"}),
            (c.id, "call", {"state": "answered"}),
        ]
        assert [e.id for e in again.agent_events_after("201", a.id)] == [c.id]
        assert again.agent_events_after("999", 0) == []
    finally:
        again.close()


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


def test_closed_journal_refuses_writes(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite3")
    journal.close()
    journal.close()  # idempotent
    with pytest.raises(JournalClosedError):
        journal.set_cursor("x", 1)


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
        except sqlite3.IntegrityError:
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


def test_submit_event_returns_a_future_resolved_once_durable(journal: SqliteJournal) -> None:
    params = _params(16, call_id="000000AA")
    futures = [journal.submit_event(parse_event(params), raw=params) for _ in range(3)]
    results = [f.result(timeout=30) for f in futures]
    assert [r.duplicate for r in results] == [False, True, True]
    assert len({r.seq for r in results}) == 1
    assert [e.seq for e in journal.events_after(0)] == [results[0].seq]
