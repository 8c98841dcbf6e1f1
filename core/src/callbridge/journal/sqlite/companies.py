"""One company's data in the SQLite journal: listing, export and purge (``callbridge companies``).

Every table has a ``company`` column with an index leading with it (migrations v4 and s6),
so selecting one company reads its rows only. Export pages through each table by its
integer key; purge deletes in the small steps ``prune`` uses, since the events file's
writer is the ingress's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..base import AgentEvent, RejectedRequest
from ..codec import from_us
from ..sqlite_file import SqliteFile
from ..tenancy import empty_counts, export_line, stored_json
from .deliveries import SqliteDeliveries
from .events import EVENT_COLUMNS, stored_event
from .pruning import SqlitePruning

#: Rows read per query while exporting.
_PAGE = 500


def _call(row: Sequence[Any]) -> dict[str, Any]:
    return {"settled": bool(row[1]), "call": stored_json(row[0])}


def _recording(row: Sequence[Any]) -> dict[str, Any]:
    call_key, reference, saved_at = row
    return {"call_key": call_key, "reference": reference, "saved_at": from_us(saved_at)}


def _rejected(row: Sequence[Any]) -> RejectedRequest:
    i, at, source, remote, reason, raw = row
    return RejectedRequest(
        id=i, received_at=from_us(at), source=source, remote=remote, reason=reason, raw=raw
    )


def _agent_event(row: Sequence[Any]) -> AgentEvent:
    i, extension, at, kind, data = row
    return AgentEvent(id=i, extension=extension, at=from_us(at), kind=kind, data=json.loads(data))


class SqliteCompanies(SqlitePruning):
    """``companies``, ``export_company`` and ``purge_company`` for both files."""

    def _tables(self) -> list[tuple[str, SqliteFile, str, str, Callable[[Sequence[Any]], Any]]]:
        """(kind, file, table, columns, row -> record) in ``tenancy.RECORD_KINDS`` order."""
        events, state = self._events, self._state
        return [
            ("event", events, "events", EVENT_COLUMNS, stored_event),
            (
                "rejected",
                events,
                "rejected",
                "id, received_at, source, remote, reason, raw",
                _rejected,
            ),
            ("call", state, "calls", "data, settled", _call),
            (
                "originate",
                state,
                "originates",
                "data",
                lambda r: stored_json(r[0]),
            ),
            ("wrapup", state, "wrapups", "data", lambda r: stored_json(r[0])),
            ("recording", state, "recordings", "call_key, reference, saved_at", _recording),
            (
                "delivery",
                state,
                "deliveries",
                SqliteDeliveries._DELIVERY_COLUMNS,
                SqliteDeliveries._delivery,
            ),
            ("agent_event", state, "agent_events", "id, extension, at, kind, data", _agent_event),
        ]

    def companies(self) -> list[str]:
        names: set[str] = set()
        for _kind, file, table, _columns, _record in self._tables():
            rows = file.read().execute(
                f"SELECT DISTINCT company FROM {table} WHERE company IS NOT NULL"  # noqa: S608
            )
            names.update(str(name) for (name,) in rows)
        return sorted(names)

    def holds_company(self, company: str) -> bool:
        """One indexed probe per table (``companies`` reads every row's company)."""
        return any(
            file.read()
            .execute(f"SELECT 1 FROM {table} WHERE company = ? LIMIT 1", (company,))  # noqa: S608
            .fetchone()
            for _kind, file, table, _columns, _record in self._tables()
        )

    def export_company(self, company: str) -> Iterator[str]:
        for kind, file, table, columns, record in self._tables():
            after = -1
            while True:
                rows = (
                    file.read()
                    .execute(
                        f"SELECT rowid, {columns} FROM {table} "  # noqa: S608 - names are ours
                        "WHERE company = ? AND rowid > ? ORDER BY rowid LIMIT ?",
                        (company, after, _PAGE),
                    )
                    .fetchall()
                )
                for row in rows:
                    yield export_line(kind, company, record(row[1:]))
                if len(rows) < _PAGE:
                    break
                after = rows[-1][0]

    def purge_company(self, company: str, *, dry_run: bool = False) -> dict[str, int]:
        counts = empty_counts()
        for kind, file, table, _columns, _record in self._tables():
            if dry_run:
                row = (
                    file.read()
                    .execute(
                        f"SELECT COUNT(*) FROM {table} WHERE company = ?",  # noqa: S608
                        (company,),
                    )
                    .fetchone()
                )
                counts[kind] = int(row[0])
            else:
                counts[kind] = self._prune_table(file, table, "company = ?", (company,))
        return counts
