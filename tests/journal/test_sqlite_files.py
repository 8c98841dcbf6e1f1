"""The journal's two files: who checkpoints which, and a WAL that stays short under load."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from callbridge.journal.sqlite import SqliteJournal
from callbridge.testing import wait_until
from callbridge.voispeed.events import parse_event


def _append(journal: SqliteJournal, count: int, first: int = 0) -> None:
    for n in range(first, first + count):
        params = {"ssn_event": "16", "call_id": f"{n:08X}", "number": "0612345678"}
        journal.append_event(parse_event(params), raw=params)


def test_only_a_process_that_writes_a_file_checkpoints_it(tmp_path: Path) -> None:
    """The HTTP service checkpoints the events file; the engine, which only reads it, not."""
    path = tmp_path / "journal.sqlite3"
    ingress = SqliteJournal(path)
    engine = SqliteJournal(path, beside_ingress=True)
    try:
        _append(ingress, 50)
        wait_until(lambda: ingress._events.checkpoints > 0, "a checkpoint by the writer")
        engine.events_after(0)  # reading is not writing
        time.sleep(0.3)
        assert engine._events.checkpoints == 0
    finally:
        engine.close()
        ingress.close()


@pytest.mark.slow
@pytest.mark.parametrize("beside_ingress", [False, True])
def test_the_wal_restarts_under_a_steady_stream_of_commits(
    tmp_path: Path, beside_ingress: bool
) -> None:
    """One commit after another, never idle: the WAL must still rewind, not grow on.

    Each append here is its own commit of about three pages; without the writer finishing
    the checkpoint thread's work, 6,000 of them leave a WAL of over 80 MB. ``beside_ingress``: the
    events come from the engine's process (a MySQL source runs there) while the HTTP
    service's journal is open and idle.
    """
    path = tmp_path / "journal.sqlite3"
    idle = SqliteJournal(path)
    journal = SqliteJournal(path, beside_ingress=beside_ingress)
    try:
        _append(journal, 6000)
        wal = path.with_name(path.name + "-wal")
        assert wal.stat().st_size < 24 * 1024 * 1024
    finally:
        journal.close()
        idle.close()


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
