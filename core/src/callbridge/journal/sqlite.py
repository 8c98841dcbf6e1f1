"""The embedded journal: two SQLite files in WAL mode, each with its own group-committing writer.

Why this shape:

- ``synchronous=FULL`` in WAL mode makes a commit durable once it returns (the WAL is
  fsynced), which is what "the PBX gets its 200 only after the event is durable" needs.
- An fsync costs time; one per ingress request would cap the rate. So each file has one
  writer thread and group commit (``sqlite_file.py``): under load, hundreds of appends share
  one fsync; alone, an append costs one.
- Two files, because two processes write: ``callbridge serve`` runs the HTTP service, which
  appends the PBX's events, and the engine beside it, which writes what it makes of them.
  SQLite has one write lock per file. In one file, every acknowledgement could wait behind
  an engine transaction (and a busy engine made those waits the tail of the ack latency), and
  neither process could keep the WAL short. So:

  - the *events* file (``journal.sqlite3``) holds accepted events and rejected requests. The
    HTTP process writes it; the engine reads it, and appends there only what it receives
    itself (a MySQL source running in the engine process, dead letters, the daily prune).
  - the *state* file (``journal-state.sqlite3``) holds calls, deliveries, cursors,
    originates and the agent stream. The engine writes it; the HTTP service writes there only
    for click-to-call.

  Nothing needs a transaction across the two: the engine's cursor (state) names the last
  event (events) it finished, and everything it derives is re-derived from events after it.
- Reads never wait for a writer: each thread has its own read connection per file.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from ..errors import ConfigurationError
from ..models import Call, Originate
from ..voispeed import events as ev
from .base import (
    DEFAULT_DEDUP_WINDOW,
    AgentEvent,
    AppendResult,
    Delivery,
    DeliveryState,
    Journal,
    RejectedRequest,
    StoredEvent,
    events_floor,
    restore_event,
    stored_params,
)
from .migrations import STATE_MIGRATIONS, StateFileTakenError, migrate, migrate_events
from .sqlite_file import JournalClosedError, SqliteFile

__all__ = ["JournalClosedError", "JournalRole", "SqliteJournal", "state_path_for"]

#: What this process does with the journal (see ``SqliteJournal``).
JournalRole = Literal["all", "ingress", "engine"]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

#: Event classes by name, to give ``events_after`` back the typed event it was given.
_EVENT_CLASSES: dict[str, type[BaseModel]] = {
    cls.__name__: cls
    for cls in (
        ev.DeviceLogin,
        ev.DeviceLogout,
        ev.CallIncoming,
        ev.CallOutgoing,
        ev.CallAnswered,
        ev.CallRejected,
        ev.CallRemoteHangup,
        ev.CallLocalHangup,
        ev.UnknownEvent,
    )
}


def _to_us(when: datetime) -> int:
    """Microseconds since the epoch; naive datetimes are taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // _MICRO


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _opt_from_us(value: int | None) -> datetime | None:
    return None if value is None else _from_us(value)


def _now() -> datetime:
    return datetime.now(UTC)


def _rebuild_event(kind: str, parsed: str, raw: dict[str, str]) -> ev.AnyEvent:
    """The typed event from its stored form (see ``restore_event``: never raises)."""
    return restore_event(_EVENT_CLASSES, kind, parsed, raw)


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


class SqliteJournal(Journal):
    """The ``Journal`` in two SQLite files (events, state). Thread-safe; one per process."""

    def __init__(
        self,
        path: str | Path,
        *,
        dedup_window: float = DEFAULT_DEDUP_WINDOW,
        role: JournalRole = "all",
    ) -> None:
        """Open (and migrate) the journal whose events file is ``path``.

        The state file is beside it (``state_path_for``). A journal written by an older
        callbridge as one file is split on first open (``migrations.migrate_events``).

        ``role``: ``engine`` for the engine's process beside an HTTP service (``callbridge
        serve``): its state writer lingers after each batch so that the HTTP service's
        click-to-call writes there are not starved. ``ingress`` (that HTTP service) and
        ``all`` (anything else) change nothing today; they say what the process is.
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
            linger=role == "engine",
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

    # -- events ---------------------------------------------------------------------------
    def submit_event(
        self,
        event: ev.AnyEvent,
        *,
        raw: Mapping[str, str],
        source: str = "http",
        received_at: datetime | None = None,
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
        key = event.dedup_key
        at = _to_us(received_at or _now())
        window = self._dedup_window_us
        row = (
            at,
            source,
            key,
            json.dumps(dict(raw), separators=(",", ":")),
            type(event).__name__,
            event.model_dump_json(),
        )
        insert = (
            "INSERT INTO events (received_at, source, dedup_key, raw, kind, parsed) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING RETURNING seq"
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
                "SELECT seq, received_at, source, dedup_key, raw, kind, parsed FROM events "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            )
            .fetchall()
        )
        result = []
        for seq_, received, source, key, raw, kind, parsed in rows:
            params = stored_params(raw)
            result.append(
                StoredEvent(
                    seq=seq_,
                    received_at=_from_us(received),
                    source=source,
                    dedup_key=key,
                    raw=params,
                    event=_rebuild_event(kind, parsed, params),
                )
            )
        return result

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

    # -- rejected requests ----------------------------------------------------------------
    def record_rejected(
        self, *, raw: str, reason: str, source: str = "http", remote: str | None = None
    ) -> int:
        row = (_to_us(_now()), source, remote, reason, raw)

        def write(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO rejected (received_at, source, remote, reason, raw) "
                "VALUES (?, ?, ?, ?, ?)",
                row,
            )
            return int(cur.lastrowid or 0)

        return self._events.submit(write, durable=True)

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
            RejectedRequest(id=i, received_at=_from_us(at), source=s, remote=rm, reason=rs, raw=raw)
            for i, at, s, rm, rs, raw in rows
        ]

    # -- calls ----------------------------------------------------------------------------
    def save_call(self, call: Call, *, settled: bool = False) -> None:
        now = _now()
        started = call.ring_at or call.answer_at or call.end_at or now
        row = (
            call.key,
            call.state.value,
            _to_us(started),
            _to_us(now),
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

    # -- originates -----------------------------------------------------------------------
    def create_originate(self, originate: Originate) -> None:
        row = (
            originate.external_id,
            _to_us(originate.created_at),
            originate.state,
            originate.model_dump_json(),
        )
        self._state.submit(
            lambda conn: conn.execute(
                "INSERT INTO originates (external_id, created_at, state, data) VALUES (?, ?, ?, ?)",
                row,
            ),
            durable=True,
        )

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
        unknown = set(changes) - set(Originate.model_fields) | ({"external_id"} & set(changes))
        if unknown:
            raise ValueError(f"cannot change originate field(s): {', '.join(sorted(unknown))}")

        def write(conn: sqlite3.Connection) -> Originate | None:
            row = conn.execute(
                "SELECT data FROM originates WHERE external_id = ?", (external_id,)
            ).fetchone()
            if row is None:
                return None
            current = Originate.model_validate_json(row[0])
            if only_if is not None and current.state not in only_if:
                return current
            updated = Originate.model_validate({**current.model_dump(), **changes})
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
                (_to_us(since),),
            )
            .fetchall()
        )
        return [Originate.model_validate_json(row[0]) for row in rows]

    # -- deliveries -----------------------------------------------------------------------
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
            created_at=_from_us(created),
            next_attempt_at=_opt_from_us(due),
            last_error=error,
            payload=json.loads(payload),
            result=None if result is None else json.loads(result),
            retried_at=_opt_from_us(retried),
        )

    def enqueue_delivery(
        self, *, call_key: str, plugin: str, action: str, payload: dict[str, Any]
    ) -> Delivery:
        now = _to_us(_now())
        body = json.dumps(payload, separators=(",", ":"))

        def write(conn: sqlite3.Connection) -> Delivery:
            conn.execute(
                "INSERT INTO deliveries (call_key, plugin, action, state, attempts, created_at, "
                "next_attempt_at, payload) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?) "
                "ON CONFLICT (call_key, plugin, action) DO NOTHING",
                (call_key, plugin, action, now, now, body),
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
        params: tuple[Any, ...] = (_to_us(now),) if plugin is None else (_to_us(now), plugin)
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
        body = None if result is None else json.dumps(result, separators=(",", ":"))
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
        due = None if next_attempt_at is None else _to_us(next_attempt_at)
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

    def retry_delivery(self, delivery_id: int) -> bool:
        now = _to_us(_now())

        def write(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, "
                "retried_at = ? WHERE id = ? AND state = 'dead'",
                (now, now, delivery_id),
            )
            return cur.rowcount == 1

        return self._state.submit(write)

    # -- agent event stream ---------------------------------------------------------------
    def append_agent_event(self, extension: str, kind: str, data: dict[str, Any]) -> AgentEvent:
        at = _now()
        row = (extension, _to_us(at), kind, json.dumps(data, separators=(",", ":")))

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
            AgentEvent(id=i, extension=x, at=_from_us(at), kind=k, data=json.loads(d))
            for i, x, at, k, d in rows
        ]

    # -- life cycle -----------------------------------------------------------------------
    def check_writable(self) -> None:
        """Both files take a write (the events file's with an fsync, as the ingress needs)."""
        stamp = _now().isoformat()

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

    # -- retention ------------------------------------------------------------------------
    #: Rows deleted per write transaction by ``prune``, and seconds of rest between two: the
    #: events file's writer is the ingress's, so a big prune goes in small steps (a few ms
    #: each) that acknowledgements slip between, rather than one long transaction they wait
    #: behind.
    _PRUNE_CHUNK = 200
    _PRUNE_PAUSE = 0.01

    def record_rejected_fast(
        self, *, raw: str, reason: str, source: str = "http", remote: str | None = None
    ) -> int:
        """``record_rejected`` committed without an fsync (see ``Journal.record_rejected_fast``)."""
        row = (_to_us(_now()), source, remote, reason, raw)

        def write(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO rejected (received_at, source, remote, reason, raw) "
                "VALUES (?, ?, ?, ?, ?)",
                row,
            )
            return int(cur.lastrowid or 0)

        return self._events.submit(write, atomic=True)

    def prune(self, older_than: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """See ``Journal.prune``. The newest event is always kept (``last_seq`` reads it).

        Freed pages are reused by later writes; the file does not shrink (no VACUUM, which
        would rewrite the whole file while the PBX waits).
        """
        cutoff = _to_us(older_than)
        if not dry_run:
            # The cursors were committed without an fsync. Make them durable before events
            # they passed are deleted from the other file, or a power cut could leave a
            # cursor behind events that are gone.
            self._state.submit(
                lambda conn: conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('last_prune', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (_now().isoformat(),),
                ),
                durable=True,
            )
        cursors = self._state.read().execute("SELECT name, seq FROM cursors").fetchall()
        floor = events_floor({str(name): int(seq) for name, seq in cursors})
        events, state = self._events, self._state
        plans: list[tuple[SqliteFile, str, str, tuple[int, ...]]] = [
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
        ]
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

    def _prune_table(
        self, file: SqliteFile, table: str, where: str, params: tuple[int, ...]
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
