"""Calls, click-to-call originates, wrap-ups and the agents' event streams in SQLite."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from datetime import datetime
from typing import Any

from ...models import Call, Originate, WrapUp
from ..base import (
    AgentEvent,
    DuplicateOriginateError,
    changed_originate,
    check_originate_changes,
    next_wrapup,
)
from ..codec import dumps, from_us, to_us, utc_now
from ..tenancy import agent_of, company_of
from .store import CALL_COMPANY_SQL, SqliteStore


class SqliteCalls(SqliteStore):
    """What the engine (and, for click-to-call, the HTTP service) keeps in the state file."""

    def save_call(self, call: Call, *, settled: bool = False, company: str | None = None) -> None:
        now = utc_now()
        started = call.ring_at or call.answer_at or call.end_at or now
        row = (
            call.key,
            call.state.value,
            to_us(started),
            to_us(now),
            call.model_dump_json(),
            int(settled),
            company or company_of(call),
        )
        # The company is the first save's: an update never rewrites it (nor its index).
        self._state.submit(
            lambda conn: conn.execute(
                "INSERT INTO calls (key, state, started_at, updated_at, data, settled, company) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
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

    def create_originate(self, originate: Originate, *, company: str | None = None) -> None:
        row = (
            originate.external_id,
            to_us(originate.created_at),
            originate.state,
            originate.model_dump_json(),
            company or company_of(originate),
        )

        def write(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO originates (external_id, created_at, state, data, company) "
                    "VALUES (?, ?, ?, ?, ?)",
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

    def save_wrapup(self, wrapup: WrapUp, *, company: str | None = None) -> WrapUp:
        def write(conn: sqlite3.Connection) -> WrapUp:
            row = conn.execute(
                "SELECT data FROM wrapups WHERE call_key = ?", (wrapup.call_key,)
            ).fetchone()
            kept, changed = next_wrapup(None if row is None else row[0], wrapup)
            if changed:
                conn.execute(
                    "INSERT INTO wrapups (call_key, revision, saved_at, data, company) "  # noqa: S608
                    f"VALUES (?, ?, ?, ?, {CALL_COMPANY_SQL})"
                    " ON CONFLICT (call_key) DO UPDATE SET revision = excluded.revision,"
                    " saved_at = excluded.saved_at, data = excluded.data",
                    (
                        kept.call_key,
                        kept.revision,
                        to_us(kept.saved_at),
                        kept.model_dump_json(),
                        company,
                        kept.call_key,
                    ),
                )
            return kept

        # Durable: the agent is told "saved" only once a crash can no longer lose it.
        return self._state.submit(write, durable=True)

    def get_wrapup(self, call_key: str) -> WrapUp | None:
        row = (
            self._state.read()
            .execute("SELECT data FROM wrapups WHERE call_key = ?", (call_key,))
            .fetchone()
        )
        return None if row is None else WrapUp.model_validate_json(row[0])

    def append_agent_event(
        self, extension: str, kind: str, data: dict[str, Any], *, company: str | None = None
    ) -> AgentEvent:
        at = utc_now()
        row = (*agent_of(extension, company), to_us(at), kind, dumps(data))

        def write(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO agent_events (extension, company, at, kind, data) "
                "VALUES (?, ?, ?, ?, ?)",
                row,
            )
            return int(cur.lastrowid or 0)

        new_id = self._state.submit(write, atomic=True)
        return AgentEvent(id=new_id, extension=extension, at=at, kind=kind, data=data)

    def agent_events_after(
        self, extension: str, after_id: int, limit: int = 200, *, company: str | None = None
    ) -> list[AgentEvent]:
        rows = (
            self._state.read()
            .execute(
                "SELECT id, at, kind, data FROM agent_events "
                "WHERE extension = ? AND company = ? AND id > ? ORDER BY id LIMIT ?",
                (*agent_of(extension, company), after_id, limit),
            )
            .fetchall()
        )
        return [
            AgentEvent(id=i, extension=extension, at=from_us(at), kind=k, data=json.loads(d))
            for i, at, k, d in rows
        ]

    def save_recording(self, call_key: str, reference: str, at: datetime) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT reference FROM recordings WHERE call_key = ?", (call_key,)
            ).fetchone()
            if row is not None and row[0] == reference:
                return False
            conn.execute(
                "INSERT INTO recordings (call_key, reference, saved_at, company) "  # noqa: S608
                f"VALUES (?, ?, ?, {CALL_COMPANY_SQL})"
                " ON CONFLICT (call_key) DO UPDATE SET reference = excluded.reference,"
                " saved_at = excluded.saved_at",
                (call_key, reference, to_us(at), None, call_key),
            )
            return True

        # Durable: the caller is told "kept" only once a crash can no longer lose it.
        return self._state.submit(write, durable=True)

    def get_recording(self, call_key: str) -> str | None:
        row = (
            self._state.read()
            .execute("SELECT reference FROM recordings WHERE call_key = ?", (call_key,))
            .fetchone()
        )
        return None if row is None else str(row[0])
