"""Deliveries (one per call x plugin x action) and their retry state in the SQLite journal."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..base import Delivery, DeliveryState
from ..codec import dumps, from_us, opt_from_us, to_us, utc_now
from .store import CALL_COMPANY_SQL, SqliteStore


class SqliteDeliveries(SqliteStore):
    """The deliveries table of the state file."""

    _DELIVERY_COLUMNS = (
        "id, call_key, plugin, action, state, attempts, created_at, next_attempt_at, "
        "last_error, payload, result, retried_at"
    )

    @staticmethod
    def _delivery(row: Sequence[Any]) -> Delivery:
        (i, key, plugin, action, state, attempts, created, due, error, payload, result, retried) = (
            row
        )
        return Delivery(
            id=i,
            call_key=key,
            plugin=plugin,
            action=action,
            state=DeliveryState(state),
            attempts=attempts,
            created_at=from_us(created),
            next_attempt_at=opt_from_us(due),
            last_error=error,
            payload=json.loads(payload),
            result=None if result is None else json.loads(result),
            retried_at=opt_from_us(retried),
        )

    def enqueue_delivery(
        self,
        *,
        call_key: str,
        plugin: str,
        action: str,
        payload: dict[str, Any],
        company: str | None = None,
    ) -> Delivery:
        now = to_us(utc_now())
        body = dumps(payload)

        def write(conn: sqlite3.Connection) -> Delivery:
            conn.execute(
                "INSERT INTO deliveries (call_key, plugin, action, state, attempts, created_at, "  # noqa: S608
                "next_attempt_at, payload, company) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?, "
                f"{CALL_COMPANY_SQL}) ON CONFLICT (call_key, plugin, action) DO NOTHING",
                (call_key, plugin, action, now, now, body, company, call_key),
            )
            row = conn.execute(
                f"SELECT {self._DELIVERY_COLUMNS} FROM deliveries "  # noqa: S608
                "WHERE call_key = ? AND plugin = ? AND action = ?",
                (call_key, plugin, action),
            ).fetchone()
            return self._delivery(row)

        return self._state.submit(write)

    def due_deliveries(
        self, now: datetime, limit: int = 100, *, plugin: str | None = None
    ) -> list[Delivery]:
        where = "" if plugin is None else " AND plugin = ?"
        params: tuple[Any, ...] = (to_us(now),) if plugin is None else (to_us(now), plugin)
        rows = (
            self._state.read()
            .execute(
                f"SELECT {self._DELIVERY_COLUMNS} FROM deliveries "  # noqa: S608
                f"WHERE state = 'pending' AND next_attempt_at <= ?{where} "
                "ORDER BY next_attempt_at, id LIMIT ?",
                (*params, limit),
            )
            .fetchall()
        )
        return [self._delivery(row) for row in rows]

    def complete_delivery(self, delivery_id: int, result: dict[str, Any] | None) -> None:
        body = None if result is None else dumps(result)
        self._state.submit(
            lambda conn: conn.execute(
                "UPDATE deliveries SET state = 'done', attempts = attempts + 1, result = ?, "
                "next_attempt_at = NULL WHERE id = ? AND state != 'done'",
                (body, delivery_id),
            )
        )

    def fail_delivery(
        self, delivery_id: int, *, error: str, next_attempt_at: datetime | None
    ) -> None:
        state = DeliveryState.DEAD if next_attempt_at is None else DeliveryState.PENDING
        due = None if next_attempt_at is None else to_us(next_attempt_at)
        self._state.submit(
            lambda conn: conn.execute(
                "UPDATE deliveries SET state = ?, attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ? WHERE id = ? AND state = 'pending'",
                (state.value, error, due, delivery_id),
            )
        )

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        row = (
            self._state.read()
            .execute(
                f"SELECT {self._DELIVERY_COLUMNS} FROM deliveries WHERE id = ?",  # noqa: S608
                (delivery_id,),
            )
            .fetchone()
        )
        return None if row is None else self._delivery(row)

    def delivery_counts(self) -> list[tuple[str, str, int]]:
        rows = (
            self._state.read()
            .execute(
                "SELECT plugin, state, COUNT(*) FROM deliveries GROUP BY plugin, state "
                "ORDER BY plugin, state"
            )
            .fetchall()
        )
        return [(str(plugin), str(state), int(n)) for plugin, state, n in rows]

    def list_deliveries(
        self,
        *,
        state: DeliveryState | None = None,
        call_keys: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        clauses: list[str] = []
        params: list[Any] = []
        if state is not None:
            clauses.append("state = ?")
            params.append(DeliveryState(state).value)
        if call_keys is not None:
            if not call_keys:
                return []
            clauses.append(f"call_key IN ({','.join('?' * len(call_keys))})")
            params.extend(call_keys)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = (
            self._state.read()
            .execute(
                f"SELECT {self._DELIVERY_COLUMNS} FROM deliveries {where} "  # noqa: S608
                "ORDER BY id DESC LIMIT ?",
                (*params, limit),
            )
            .fetchall()
        )
        return [self._delivery(row) for row in rows]

    def reschedule_delivery(self, delivery_id: int, at: datetime) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE id = ? AND state = 'pending'",
                (to_us(at), delivery_id),
            )
            return cur.rowcount == 1

        return self._state.submit(write)

    def retry_delivery(self, delivery_id: int) -> bool:
        now = to_us(utc_now())

        def write(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, "
                "retried_at = ? WHERE id = ? AND state = 'dead'",
                (now, now, delivery_id),
            )
            return cur.rowcount == 1

        return self._state.submit(write)
