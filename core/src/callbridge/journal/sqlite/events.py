"""Accepted events, rejected requests and consumers' cursors in the SQLite journal."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from ...voispeed import events as ev
from ..base import AppendResult, RejectedRequest, StoredEvent
from ..codec import decode_event, encode_event, from_us, to_us, utc_now
from ..tenancy import company_of
from .store import SqliteStore


def _insert_rejected(
    raw: str, reason: str, source: str, remote: str | None, company: str | None
) -> Callable[[sqlite3.Connection], int]:
    """The write that keeps a rejected request (timed now, in the caller's thread)."""
    row = (to_us(utc_now()), source, remote, reason, raw, company)

    def write(conn: sqlite3.Connection) -> int:
        cur = conn.execute(
            "INSERT INTO rejected (received_at, source, remote, reason, raw, company) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            row,
        )
        return int(cur.lastrowid or 0)

    return write


#: The columns ``stored_event`` reads, in its order.
EVENT_COLUMNS = "seq, received_at, source, dedup_key, raw, kind, parsed"


def stored_event(row: Sequence[Any]) -> StoredEvent:
    """An events row (``EVENT_COLUMNS``) as the journal hands it out."""
    seq, received, source, key, raw, kind, parsed = row
    params, event = decode_event(kind, parsed, raw)
    return StoredEvent(
        seq=seq,
        received_at=from_us(received),
        source=source,
        dedup_key=key,
        raw=params,
        event=event,
    )


class SqliteEvents(SqliteStore):
    """The events file's part of the journal, and the cursors that say how far it was read."""

    #: Events with the same dedup key less than this far apart are repeats (microseconds).
    _dedup_window_us: int

    def submit_event(
        self,
        event: ev.AnyEvent,
        *,
        raw: Mapping[str, str],
        source: str = "http",
        received_at: datetime | None = None,
        company: str | None = None,
    ) -> Future[AppendResult]:
        """Like ``append_event``, but return the writer's future (resolved once durable).

        An asyncio ingress can await it (``asyncio.wrap_future``) without a thread per request.

        Deduplication with a window: ``dedup_key`` stays UNIQUE and is held by the *latest*
        event with that key. A new key (the common case) is one ``INSERT ... ON CONFLICT DO
        NOTHING``, exactly as before the window existed. On a conflict, the holder's
        ``received_at`` decides: less than the window away, a repeat (the holder's seq comes
        back); otherwise the holder *retires* its key (rewritten to ``<key>/<seq>``, unique and
        never a real key: those are hex) and the event is inserted under the key. So the ack
        path costs one indexed statement, no table scan nor second index, and old journals need
        no migration (a retired key is only ever read back as ``StoredEvent.dedup_key``).
        """
        # Serialise in the caller's thread: the writer thread is the bottleneck, keep it lean.
        stored = encode_event(event, raw, received_at)
        key, at = stored.dedup_key, stored.received_at
        window = self._dedup_window_us
        row = (
            at,
            source,
            key,
            stored.raw,
            stored.kind,
            stored.parsed,
            company or company_of(event),
        )
        insert = (
            "INSERT INTO events (received_at, source, dedup_key, raw, kind, parsed, company) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING RETURNING seq"
        )

        def write(conn: sqlite3.Connection) -> AppendResult:
            found = conn.execute(insert, row).fetchone()
            if found is not None:
                return AppendResult(seq=int(found[0]), duplicate=False)
            seq, then = conn.execute(
                "SELECT seq, received_at FROM events WHERE dedup_key = ?", (key,)
            ).fetchone()
            if abs(at - int(then)) < window:
                return AppendResult(seq=int(seq), duplicate=True)
            # Outside the window: a new event (a reused user call id). Two statements, so in
            # a savepoint of their own: the holder keeps its key unless the insert succeeds.
            conn.execute("SAVEPOINT redup")
            try:
                conn.execute(
                    "UPDATE events SET dedup_key = dedup_key || '/' || seq WHERE seq = ?", (seq,)
                )
                (new_seq,) = conn.execute(insert, row).fetchone()
            except BaseException:
                conn.execute("ROLLBACK TO redup")
                conn.execute("RELEASE redup")
                raise
            conn.execute("RELEASE redup")
            return AppendResult(seq=int(new_seq), duplicate=False)

        return self._events.enqueue(write, atomic=True, durable=True)

    def events_after(self, seq: int, limit: int = 500) -> list[StoredEvent]:
        rows = (
            self._events.read()
            .execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
                (seq, limit),
            )
            .fetchall()
        )
        return [stored_event(row) for row in rows]

    def last_seq(self) -> int:
        """The highest sequence number taken so far (0 for an empty journal)."""
        row = self._events.read().execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        return int(row[0])

    def get_cursor(self, name: str) -> int:
        row = (
            self._state.read().execute("SELECT seq FROM cursors WHERE name = ?", (name,)).fetchone()
        )
        return 0 if row is None else int(row[0])

    def set_cursor(self, name: str, seq: int) -> None:
        self._state.submit(
            lambda conn: conn.execute(
                "INSERT INTO cursors (name, seq) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                (name, seq),
            ),
            atomic=True,
        )

    def record_rejected(
        self,
        *,
        raw: str,
        reason: str,
        source: str = "http",
        remote: str | None = None,
        company: str | None = None,
    ) -> int:
        write = _insert_rejected(raw, reason, source, remote, company)
        return self._events.submit(write, durable=True)

    def record_rejected_fast(
        self,
        *,
        raw: str,
        reason: str,
        source: str = "http",
        remote: str | None = None,
        company: str | None = None,
    ) -> int:
        """``record_rejected`` committed without an fsync (see ``Journal.record_rejected_fast``)."""
        write = _insert_rejected(raw, reason, source, remote, company)
        return self._events.submit(write, atomic=True)

    def list_rejected(self, limit: int = 100) -> list[RejectedRequest]:
        rows = (
            self._events.read()
            .execute(
                "SELECT id, received_at, source, remote, reason, raw FROM rejected "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [
            RejectedRequest(id=i, received_at=from_us(at), source=s, remote=rm, reason=rs, raw=raw)
            for i, at, s, rm, rs, raw in rows
        ]
