"""Calls, click-to-call originates and the agents' event streams in the SQLite journal."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from datetime import datetime
from typing import Any

from ...models import Call, Originate
from ..base import (
    AgentEvent,
    DuplicateOriginateError,
    changed_originate,
    check_originate_changes,
)
from ..codec import dumps, from_us, to_us, utc_now
from .store import SqliteStore


class SqliteCalls(SqliteStore):
    """What the engine (and, for click-to-call, the HTTP service) keeps in the state file."""

    def save_call(self, call: Call, *, settled: bool = False) -> None:
        now = utc_now()
        started = call.ring_at or call.answer_at or call.end_at or now
        row = (
            call.key,
            call.state.value,
            to_us(started),
            to_us(now),
            call.model_dump_json(),
            int(settled),
        )
        self._state.submit(
            lambda conn: conn.execute(
                "INSERT INTO calls (key, state, started_at, updated_at, data, settled) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "state = excluded.state, started_at = excluded.started_at, "
                "updated_at = excluded.updated_at, data = excluded.data, "
                "settled = MAX(calls.settled, excluded.settled)",
                row,
            )
        )

    def get_call(self, key: str) -> Call | None:
        row = self._state.read().execute("SELECT data FROM calls WHERE key = ?", (key,)).fetchone()
        return None if row is None else Call.model_validate_json(row[0])

    def list_calls(self, limit: int = 50, *, open_only: bool = False) -> list[Call]:
        where = "WHERE settled = 0" if open_only else ""
        rows = (
            self._state.read()
            .execute(
                f"SELECT data FROM calls {where} ORDER BY started_at DESC, rowid DESC LIMIT ?",  # noqa: S608
                (limit,),
            )
            .fetchall()
        )
        return [Call.model_validate_json(data) for (data,) in rows]

    def is_settled(self, key: str) -> bool:
        """Whether the dispatcher is done with this call (see ``save_call``)."""
        row = (
            self._state.read().execute("SELECT settled FROM calls WHERE key = ?", (key,)).fetchone()
        )
        return bool(row and row[0])

    def create_originate(self, originate: Originate) -> None:
        row = (
            originate.external_id,
            to_us(originate.created_at),
            originate.state,
            originate.model_dump_json(),
        )

        def write(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO originates (external_id, created_at, state, data) "
                    "VALUES (?, ?, ?, ?)",
                    row,
                )
            except sqlite3.IntegrityError:
                raise DuplicateOriginateError(
                    f"an originate with external id {originate.external_id!r} already exists"
                ) from None

        self._state.submit(write, durable=True)

    def get_originate(self, external_id: str) -> Originate | None:
        row = (
            self._state.read()
            .execute("SELECT data FROM originates WHERE external_id = ?", (external_id,))
            .fetchone()
        )
        return None if row is None else Originate.model_validate_json(row[0])

    def update_originate(
        self, external_id: str, *, only_if: Collection[str] | None = None, **changes: Any
    ) -> Originate | None:
        check_originate_changes(changes)

        def write(conn: sqlite3.Connection) -> Originate | None:
            row = conn.execute(
                "SELECT data FROM originates WHERE external_id = ?", (external_id,)
            ).fetchone()
            if row is None:
                return None
            updated, changed = changed_originate(row[0], only_if, changes)
            if not changed:
                return updated
            conn.execute(
                "UPDATE originates SET state = ?, data = ? WHERE external_id = ?",
                (updated.state, updated.model_dump_json(), external_id),
            )
            return updated

        return self._state.submit(write)

    def recent_originates(self, since: datetime) -> list[Originate]:
        # No index on created_at: the scan compares one integer a row and parses only the
        # rows it returns (originates are few next to events; retention bounds them).
        rows = (
            self._state.read()
            .execute(
                "SELECT data FROM originates WHERE created_at >= ? ORDER BY created_at",
                (to_us(since),),
            )
            .fetchall()
        )
        return [Originate.model_validate_json(row[0]) for row in rows]

    def append_agent_event(self, extension: str, kind: str, data: dict[str, Any]) -> AgentEvent:
        at = utc_now()
        row = (extension, to_us(at), kind, dumps(data))

        def write(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO agent_events (extension, at, kind, data) VALUES (?, ?, ?, ?)", row
            )
            return int(cur.lastrowid or 0)

        new_id = self._state.submit(write, atomic=True)
        return AgentEvent(id=new_id, extension=extension, at=at, kind=kind, data=data)

    def agent_events_after(
        self, extension: str, after_id: int, limit: int = 200
    ) -> list[AgentEvent]:
        rows = (
            self._state.read()
            .execute(
                "SELECT id, extension, at, kind, data FROM agent_events "
                "WHERE extension = ? AND id > ? ORDER BY id LIMIT ?",
                (extension, after_id, limit),
            )
            .fetchall()
        )
        return [
            AgentEvent(id=i, extension=x, at=from_us(at), kind=k, data=json.loads(d))
            for i, x, at, k, d in rows
        ]
