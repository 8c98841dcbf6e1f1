"""The journal's two files: who checkpoints which, and a WAL that stays short under load."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from callbridge.journal.sqlite import SqliteJournal
from callbridge.voispeed.events import parse_event


def _checkpointers() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("journal-checkpoint:")}


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("all", {"journal.sqlite3", "journal-state.sqlite3"}),
        ("ingress", {"journal.sqlite3"}),
        ("engine", {"journal-state.sqlite3"}),
    ],
)
def test_each_process_checkpoints_the_file_it_writes(
    tmp_path: Path, role: str, expected: set[str]
) -> None:
    before = _checkpointers()
    journal = SqliteJournal(tmp_path / "journal.sqlite3", role=role)  # type: ignore[arg-type]
    try:
        started = _checkpointers() - before
        assert {name.partition(":")[2] for name in started} == expected
    finally:
        journal.close()
    assert _checkpointers() == before


@pytest.mark.slow
def test_the_wal_restarts_under_a_steady_stream_of_commits(tmp_path: Path) -> None:
    """One commit after another, never idle: the WAL must still rewind, not grow on.

    Each append here is its own commit of about three pages; without the writer finishing
    the checkpoint thread's work, 6,000 of them leave a WAL of over 80 MB.
    """
    path = tmp_path / "journal.sqlite3"
    journal = SqliteJournal(path)
    try:
        for n in range(6000):
            params = {"ssn_event": "16", "call_id": f"{n:08X}", "number": "0612345678"}
            journal.append_event(parse_event(params), raw=params)
        wal = path.with_name(path.name + "-wal")
        assert wal.stat().st_size < 24 * 1024 * 1024
    finally:
        journal.close()


def _open_together(path: Path, count: int) -> tuple[list[SqliteJournal], list[BaseException]]:
    """Open the journal at ``path`` from ``count`` threads released at the same instant."""
    barrier = threading.Barrier(count)
    opened: list[SqliteJournal] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        barrier.wait()
        try:
            opened.append(SqliteJournal(path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return opened, errors


@pytest.mark.slow
def test_processes_opening_a_new_journal_at_once_migrate_it_once(tmp_path: Path) -> None:
    """``serve --engine none`` and ``callbridge engine`` started together: both open it."""
    for attempt in range(5):
        opened, errors = _open_together(tmp_path / str(attempt) / "journal.sqlite3", 4)
        for journal in opened:
            journal.close()
        assert errors == []
        assert len(opened) == 4
