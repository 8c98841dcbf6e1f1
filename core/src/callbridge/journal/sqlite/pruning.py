"""Retention for the SQLite journal: deleting what is finished, in small steps."""

from __future__ import annotations

import time
from datetime import datetime

from ..base import events_floor
from ..codec import to_us, utc_now
from ..sqlite_file import SqliteFile
from .store import SqliteStore


class SqlitePruning(SqliteStore):
    """``prune`` for both files."""

    #: Rows deleted per write transaction by ``prune``, and seconds of rest between two: the
    #: events file's writer is the ingress's, so a big prune goes in small steps (a few ms
    #: each) that acknowledgements slip between, rather than one long transaction they wait
    #: behind.
    _PRUNE_CHUNK = 200
    _PRUNE_PAUSE = 0.01

    def prune(self, older_than: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """See ``Journal.prune``. The newest event is always kept (``last_seq`` reads it).

        Freed pages are reused by later writes; the file does not shrink (no VACUUM, which
        would rewrite the whole file while the PBX waits).
        """
        cutoff = to_us(older_than)
        if not dry_run:
            # The cursors were committed without an fsync. Make them durable before events
            # they passed are deleted from the other file, or a power cut could leave a
            # cursor behind events that are gone.
            self._state.submit(
                lambda conn: conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('last_prune', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (utc_now().isoformat(),),
                ),
                durable=True,
            )
        cursors = self._state.read().execute("SELECT name, seq FROM cursors").fetchall()
        floor = events_floor({str(name): int(seq) for name, seq in cursors})
        plans = self._prune_plans(cutoff, floor)
        counts: dict[str, int] = {}
        for file, table, where, params in plans:
            if dry_run:
                row = (
                    file.read()
                    .execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", params)  # noqa: S608
                    .fetchone()
                )
                counts[table] = int(row[0])
                continue
            counts[table] = self._prune_table(file, table, where, params)
        return counts

    def _prune_plans(
        self, cutoff: int, floor: int
    ) -> list[tuple[SqliteFile, str, str, tuple[int, ...]]]:
        """(file, table, condition, parameters) of what ``prune`` deletes."""
        events, state = self._events, self._state
        return [
            (
                events,
                "events",
                "seq <= ? AND received_at < ? AND seq < (SELECT MAX(seq) FROM events)",
                (floor, cutoff),
            ),
            (state, "agent_events", "at < ?", (cutoff,)),
            (events, "rejected", "received_at < ?", (cutoff,)),
            (
                state,
                "calls",
                "settled = 1 AND updated_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d "
                "WHERE d.call_key = calls.key AND d.state = 'pending')",
                (cutoff,),
            ),
            (
                state,
                "deliveries",
                "state IN ('done', 'dead') AND COALESCE(retried_at, created_at) < ?",
                (cutoff,),
            ),
            (state, "originates", "created_at < ?", (cutoff,)),
            *(
                (
                    state,
                    table,
                    f"saved_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d "  # noqa: S608
                    f"WHERE d.call_key = {table}.call_key AND d.state = 'pending')",
                    (cutoff,),
                )
                for table in ("wrapups", "recordings")
            ),
        ]

    def _prune_table(
        self, file: SqliteFile, table: str, where: str, params: tuple[object, ...]
    ) -> int:
        """Delete the rows of ``table`` matching ``where``, ``_PRUNE_CHUNK`` per transaction."""
        statement = (
            f"DELETE FROM {table} WHERE rowid IN "  # noqa: S608 - names are ours, not input
            f"(SELECT rowid FROM {table} WHERE {where} LIMIT {self._PRUNE_CHUNK})"
        )
        total = 0
        while True:
            deleted = file.submit(
                lambda conn: conn.execute(statement, params).rowcount, atomic=True
            )
            total += deleted
            if deleted < self._PRUNE_CHUNK:
                return total
            time.sleep(self._PRUNE_PAUSE)
