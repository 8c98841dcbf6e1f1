"""``SqliteJournal``: opens the two files, pairs them, and puts the parts together."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

from ...errors import ConfigurationError
from ..base import DEFAULT_DEDUP_WINDOW
from ..codec import utc_now
from ..migrations import STATE_MIGRATIONS, StateFileTakenError, migrate, migrate_events
from ..sqlite_file import SqliteFile
from .calls import SqliteCalls
from .companies import SqliteCompanies
from .deliveries import SqliteDeliveries
from .events import SqliteEvents

log = logging.getLogger(__name__)


def _journal_id(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'journal_id'").fetchone()
    return None if row is None else str(row[0])


def _claim_journal_id(journal_id: str) -> Callable[[sqlite3.Connection], None]:
    """Write the id unless the file has one already (another process got there first)."""

    def write(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('journal_id', ?) ON CONFLICT (key) DO NOTHING",
            (journal_id,),
        )

    return write


def state_path_for(path: Path) -> Path:
    """The state file that goes with the events file at ``path``: ``<stem>-state<suffix>``."""
    return path.with_name(f"{path.stem}-state{path.suffix}")


class SqliteJournal(SqliteEvents, SqliteCalls, SqliteDeliveries, SqliteCompanies):
    """The ``Journal`` in two SQLite files (events, state). Thread-safe; one per process."""

    def __init__(
        self,
        path: str | Path,
        *,
        dedup_window: float = DEFAULT_DEDUP_WINDOW,
        beside_ingress: bool = False,
    ) -> None:
        """Open (and migrate) the journal whose events file is ``path``.

        The state file is beside it (``state_path_for``). A journal written by an older
        callbridge as one file is split on first open (``migrations.migrate_events``).

        ``beside_ingress``: True for the engine's process beside an HTTP service
        (``callbridge serve``): its state writer lingers after each batch so that the HTTP
        service's click-to-call writes there are not starved.
        """
        if not dedup_window > 0:
            raise ValueError(
                f"dedup_window must be a positive number of seconds, not {dedup_window}"
            )
        #: Events with the same dedup key less than this far apart are repeats (microseconds).
        self._dedup_window_us = max(1, int(dedup_window * 1_000_000))
        self.path = Path(path)
        self.state_path = state_path_for(self.path)
        self._state = SqliteFile(
            self.state_path,
            migrate=lambda conn: migrate(conn, STATE_MIGRATIONS),
            linger=beside_ingress,
        )
        try:
            state_id = _journal_id(self._state.read())
            self._events = SqliteFile(
                self.path,
                migrate=lambda conn: migrate_events(
                    conn, str(self.state_path), state_taken=state_id is not None
                ),
            )
        except StateFileTakenError as exc:
            self._state.close()
            raise ConfigurationError(f"CALLBRIDGE_JOURNAL: {exc}") from None
        except BaseException:
            self._state.close()
            raise
        try:
            self._pair()
        except BaseException:
            self.close()
            raise

    def _pair(self) -> None:
        """Make sure the two files belong together, naming them the first time.

        Each file keeps the journal's id in its ``meta`` table. A state file with another id,
        or with an id beside an events file without one (deleted, or replaced by a backup of
        another journal), is refused: its cursor would skip the events of this one. An events
        file with an id beside a new state file is a lost state file: every event is handled
        again from the start, which is the documented way back (see docs/concepts.md). Two
        processes opening a new journal at once agree: the first id written wins.
        """
        events_id = _journal_id(self._events.read())
        state_id = _journal_id(self._state.read())
        if events_id is not None and events_id == state_id:
            return
        if state_id is None:
            if events_id is None:
                # Events file first: a crash before the state's write is the case below.
                self._events.submit(_claim_journal_id(uuid.uuid4().hex), durable=True)
                events_id = _journal_id(self._events.read())
            elif self.last_seq():
                log.warning(
                    "%s is new beside an existing %s: every event in it is handled again",
                    self.state_path.name,
                    self.path.name,
                )
            assert events_id is not None
            self._state.submit(_claim_journal_id(events_id), durable=True)
            state_id = _journal_id(self._state.read())
        if state_id != events_id:
            raise ConfigurationError(
                f"CALLBRIDGE_JOURNAL: {self.state_path.name} belongs to another journal than "
                f"{self.path} (restore the matching pair of files, or move "
                f"{self.state_path.name} away to start the state afresh)"
            )

    def __repr__(self) -> str:
        return f"SqliteJournal({str(self.path)!r})"

    def check_writable(self) -> None:
        """Both files take a write (the events file's with an fsync, as the ingress needs)."""
        stamp = utc_now().isoformat()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('last_check', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (stamp,),
            )

        self._events.submit(write, durable=True)
        self._state.submit(write)

    def close(self) -> None:
        self._events.close()
        self._state.close()
