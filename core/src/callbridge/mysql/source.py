"""The MySQL event source: reads ``callbridge_outbox`` into the journal.

``CALLBRIDGE_SOURCE=mysql://user:pw@host:port/db`` runs a ``MysqlSource`` beside the HTTP
ingress. Each pass reads outbox rows above a high-water mark, turns each into the document's
parameters, fills in what the tables know and the row lacks (``Directory``), parses it with
``parse_event``, appends it to the journal (``source="mysql"``) and only then deletes the row
(or marks it consumed). A malformed row is kept in the journal's rejected list and deleted: it
never stops the source.

Why the details below:

* **Commit order is not id order.** Two PBX transactions take outbox ids 7 and 8; 8 commits
  first. A plain ``id > mark`` reader would move past 7 and never see it. Ids skipped over are
  kept as *gaps* and re-read on every pass for ``gap_grace`` seconds; most fill in (late
  commits), the rest were rolled back and are given up. Besides, in delete mode every row still
  in the table is unconsumed, so a periodic *sweep* below the mark catches anything the gap
  window missed (a very long transaction; ids reused after a MySQL 5.7 restart reset the
  auto-increment counter).
* **Durable position.** ``journal.set_cursor("mysql:<db>", low)`` stores the *low* water mark:
  just below the oldest open gap. After a restart the source re-reads from there; rows it had
  already consumed are gone (delete mode) or marked (mark mode), so nothing repeats and the
  open gaps are watched again.
* **No loss, no repeat.** A row is deleted only after the journal has it durably. If the
  delete fails (connection lost), the id is remembered and the next pass only deletes it. The
  one remaining window (a crash between the journal's commit and the delete) makes the row be
  read again after restart; the journal's deduplication then drops the repeat.
* **Connection loss** (server restart, ``KILL``, network): the pass fails, the connection is
  dropped, and the loop reconnects with exponential backoff and jitter. State (mark, gaps)
  survives in memory, so nothing is skipped.

* **Nudges** (sys_exec mode): the trigger's detached curl reaches the ingress, which calls
  ``nudge()``, usually *before* the PBX's transaction commits, so the poll it causes finds
  nothing. A nudge therefore starts a burst of fast polls (every ``nudge_interval`` for
  ``nudge_window`` seconds) instead of one poll and a full ``poll_interval`` of sleep. The
  triggers nudge at most every ``NUDGE_EVERY`` (0.5 s) per PBX session, less than the window:
  the events in between are picked up by the burst the last nudge started.

``fetch_outbox_row`` (in ``outbox``, re-exported here) reads one row by id, for tools; never
call it while the PBX waits.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pymysql
from pydantic import SecretStr

from ..journal.base import Journal
from ..voispeed.codes import SsnEvent, ssn_event_of
from ..voispeed.events import (
    MAX_VALUE_LENGTH,
    USER_EXTENSION,
    EventParseError,
    parse_event,
)
from ..voispeed.ids import InvalidIdentifier, normalize_id
from .directory import Directory
from .dsn import MysqlDsn, parse_dsn
from .outbox import _SELECT, MalformedRow, OutboxRow, _row, decode_params, fetch_outbox_row

__all__ = [
    "MalformedRow",
    "MysqlSource",
    "OutboxRow",
    "SourceStats",
    "decode_params",
    "fetch_outbox_row",
]

log = logging.getLogger(__name__)

#: Errors after which the connection is dropped and re-opened.
_CONNECTION_ERRORS = (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError)
#: Ids tracked per jump of the auto-increment counter; a larger jump is left to the sweep.
_MAX_GAP_IDS = 1000


@dataclass
class SourceStats:
    """Counters of one source (for logs, ``/metrics`` and tests)."""

    events: int = 0
    duplicates: int = 0
    rejected: int = 0
    reconnects: int = 0
    gaps_filled: int = 0
    gaps_given_up: int = 0
    swept: int = 0
    errors: list[str] = field(default_factory=list)


class MysqlSource:
    """Reads the outbox into the journal; run ``run(stop_event)`` in a thread."""

    def __init__(
        self,
        dsn: str | SecretStr | MysqlDsn,
        journal: Journal,
        *,
        poll_interval: float = 0.2,
        batch_size: int = 200,
        gap_grace: float = 30.0,
        sweep_interval: float = 60.0,
        consume: Literal["delete", "mark"] = "delete",
        directory_ttl: float = 300.0,
        enrich: bool = True,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        nudge_interval: float = 0.01,
        nudge_window: float = 2.0,
        cursor_name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dsn = dsn if isinstance(dsn, MysqlDsn) else parse_dsn(dsn)
        self.journal = journal
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.gap_grace = gap_grace
        self.sweep_interval = sweep_interval
        if consume not in ("delete", "mark"):
            raise ValueError("consume must be 'delete' or 'mark'")
        self.consume = consume
        self.enrich = enrich
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.nudge_interval = nudge_interval
        self.nudge_window = nudge_window
        self._burst_until = 0.0
        self.cursor_name = cursor_name or f"mysql:{self.dsn.database}"
        self.stats = SourceStats()
        self._clock = clock
        self._conn: Any = None
        self._utc_offset: timedelta | None = None
        self._connected_before = False
        self._mark: int | None = None
        self._gaps: dict[int, float] = {}
        self._unacked: set[int] = set()
        self._stored_cursor: int | None = None
        self._last_sweep = clock()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self.directory = Directory(self._query, ttl=directory_ttl)

    def __repr__(self) -> str:
        return f"MysqlSource({self.dsn.display()!r})"

    # -- public ---------------------------------------------------------------------------
    def nudge(self) -> None:
        """Poll now, and every ``nudge_interval`` for ``nudge_window`` seconds (sys_exec mode).

        The nudge comes from inside the PBX's transaction, so the row usually commits a few
        milliseconds after the first poll; the burst catches it then, not a poll interval later,
        and the rows of the PBX's writes that did not nudge (see ``NUDGE_EVERY``) as well.
        """
        self._burst_until = time.monotonic() + self.nudge_window
        self._wake.set()

    @property
    def connection_id(self) -> int | None:
        """The server's id of the current connection (``KILL``-able), None when disconnected."""
        return None if self._conn is None else int(self._conn.thread_id())

    @property
    def gaps(self) -> frozenset[int]:
        """Outbox ids below the mark still being waited for."""
        return frozenset(self._gaps)

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; never raises (errors are logged and retried)."""
        delay = self.backoff_initial
        while not stop.is_set():
            try:
                handled = self.poll_once()
                delay = self.backoff_initial
            except Exception as exc:  # the source must outlive any failure
                self._note_error(exc)
                self._disconnect()
                wait = delay * (0.5 + random.random())
                delay = min(delay * 2, self.backoff_max)
                stop.wait(wait)
                continue
            if handled < self.batch_size:
                fast = time.monotonic() < self._burst_until
                self._wake.wait(self.nudge_interval if fast else self.poll_interval)
                self._wake.clear()
        self._disconnect()

    def start(self, stop: threading.Event) -> threading.Thread:
        """Run in a daemon thread; set ``stop`` and join the thread to end it."""
        thread = threading.Thread(target=self.run, args=(stop,), name=repr(self), daemon=True)
        thread.start()
        return thread

    def poll_once(self) -> int:
        """One pass: gaps, new rows, and a sweep when due. Returns the rows handled.

        Raises on connection and journal errors (``run`` reconnects and retries).
        """
        with self._lock:
            conn = self._connection()
            if self._mark is None:
                self._mark = self.journal.get_cursor(self.cursor_name)
                self._stored_cursor = self._mark
            handled = self._recheck_gaps(conn)
            handled += self._read_new(conn)
            if self._clock() - self._last_sweep >= self.sweep_interval:
                handled += self._sweep(conn)
                self._last_sweep = self._clock()
            self._store_cursor()
            return handled

    def close(self) -> None:
        """Drop the connection."""
        with self._lock:
            self._disconnect()

    # -- passes ---------------------------------------------------------------------------
    def _unconsumed(self) -> str:
        return " AND `consumed_at` IS NULL" if self.consume == "mark" else ""

    def _recheck_gaps(self, conn: Any) -> int:
        if not self._gaps:
            return 0
        now = self._clock()
        ids = sorted(self._gaps)
        marks = ", ".join(["%s"] * len(ids))
        rows = self._select(conn, f"WHERE `id` IN ({marks}){self._unconsumed()} ORDER BY `id`", ids)
        for row in rows:
            self._handle(conn, row)
            self._gaps.pop(row.id, None)
            self.stats.gaps_filled += 1
        for gap, first_seen in list(self._gaps.items()):
            if now - first_seen > self.gap_grace:
                del self._gaps[gap]
                self.stats.gaps_given_up += 1
        return len(rows)

    def _read_new(self, conn: Any) -> int:
        assert self._mark is not None
        rows = self._select(
            conn,
            f"WHERE `id` > %s{self._unconsumed()} ORDER BY `id` LIMIT %s",
            (self._mark, self.batch_size),
        )
        now = self._clock()
        for row in rows:
            first_missing = self._mark + 1
            for gap in range(first_missing, min(row.id, first_missing + _MAX_GAP_IDS)):
                self._gaps.setdefault(gap, now)
            self._handle(conn, row)
            self._mark = row.id
        return len(rows)

    def _sweep(self, conn: Any) -> int:
        """Unconsumed rows at or below the mark that the gap window did not catch."""
        assert self._mark is not None
        rows = self._select(
            conn,
            f"WHERE `id` <= %s{self._unconsumed()} ORDER BY `id` LIMIT %s",
            (self._mark, self.batch_size),
        )
        for row in rows:
            if row.id in self._gaps:
                self._gaps.pop(row.id)
                self.stats.gaps_filled += 1
            else:
                self.stats.swept += 1
            self._handle(conn, row)
        return len(rows)

    # -- one row --------------------------------------------------------------------------
    def _handle(self, conn: Any, row: OutboxRow) -> None:
        """Journal one row (or reject it), then consume it."""
        if row.id not in self._unacked:
            try:
                params = decode_params(row)
                if self.enrich:
                    self._fill_in(params)
                event = parse_event(params)
            except (MalformedRow, EventParseError) as exc:
                self.journal.record_rejected(
                    raw=f"outbox#{row.id} {row.origin}: {row.params[: MAX_VALUE_LENGTH * 4]}",
                    reason=str(exc),
                    source="mysql",
                )
                self.stats.rejected += 1
                log.warning("outbox row %s rejected: %s", row.id, exc)
            else:
                result = self.journal.append_event(
                    event, raw=params, source="mysql", received_at=self._utc(row.created_at)
                )
                if result.duplicate:
                    self.stats.duplicates += 1
                else:
                    self.stats.events += 1
            self._unacked.add(row.id)
        self._ack(conn, row.id)
        self._unacked.discard(row.id)

    def _ack(self, conn: Any, outbox_id: int) -> None:
        with conn.cursor() as cur:
            if self.consume == "delete":
                cur.execute("DELETE FROM `callbridge_outbox` WHERE `id` = %s", (outbox_id,))
            else:
                cur.execute(
                    "UPDATE `callbridge_outbox` SET `consumed_at` = NOW(6) WHERE `id` = %s",
                    (outbox_id,),
                )

    def _fill_in(self, params: dict[str, str]) -> None:
        """Add what the PBX's tables know and the row lacks (extension, names, e-mail)."""
        user_id = _hex(params.get("user_id") or params.get("sender_id"))
        user = self.directory.user(user_id) if user_id is not None else None
        code = ssn_event_of(params.get("ssn_event"))
        device = code in (SsnEvent.DEVICE_LOGIN, SsnEvent.DEVICE_LOGOUT)
        company = _decimal(params.get("company_id"))
        if user is not None:
            if user.extension:
                if device:
                    side = "number"
                elif _callee_is_ours(code, params):
                    side = "number"  # incoming: the callee is our user
                else:
                    side = "ext"
                if not params.get(side):
                    params[side] = user.extension
                if not device:
                    # The user's own extension, whatever ``ext`` says (16: the number called,
                    # a group's or a DID): the call tracker takes the member from here.
                    params.setdefault(USER_EXTENSION, user.extension)
            if user.email:
                params.setdefault("user_email", user.email)
            if user.display_name:
                params.setdefault("user_name", user.display_name)
            if user.username:
                params.setdefault("user_username", user.username)
            if company is None and user.company_id is not None:
                params["company_id"] = str(user.company_id)
                company = user.company_id
        if code is SsnEvent.CALL_OUTGOING and not params.get("ext_id"):
            # The agent's outgoing leg of a click-to-call: the PBX may keep the CallReq's
            # external id on monitor_calls only. (Other events of the call take it from the
            # engine, which ties them to this leg.)
            user_call = _hex(params.get("call_id"))
            if user_call is not None:
                external_id = self.directory.call_external_id(company, user_call)
                if external_id:
                    params["ext_id"] = external_id
        if code is not None and not device and not params.get("identity"):
            remote = self._remote_number(params)
            colleague = self.directory.user_by_extension(remote, company) if remote else None
            if colleague is not None:  # an internal call: the other side is a PBX user
                params["identity"] = colleague.identity
        if company is not None:
            found = self.directory.company(company)
            if found is not None and found.name:
                params.setdefault("company_name", found.name)

    @staticmethod
    def _remote_number(params: dict[str, str]) -> str:
        if _callee_is_ours(ssn_event_of(params.get("ssn_event")), params):
            return params.get("ext", "")
        return params.get("number", "")

    # -- plumbing -------------------------------------------------------------------------
    def _select(self, conn: Any, where: str, args: Sequence[Any]) -> list[OutboxRow]:
        with conn.cursor() as cur:
            cur.execute(f"{_SELECT} {where}", tuple(args))
            return [_row(r) for r in cur.fetchall()]

    def _query(self, sql: str, args: Sequence[Any]) -> Sequence[Sequence[Any]]:
        conn = self._connection()
        with conn.cursor() as cur:
            cur.execute(sql, tuple(args))
            return list(cur.fetchall())

    def _utc(self, created_at: datetime | None) -> datetime | None:
        """The row's creation time in UTC: when the PBX wrote it, not when we read it.

        The journal's repeat window is measured on this time, so a row journaled just before
        a crash and read again after a long outage is still recognised as the same event.
        """
        if created_at is None or self._utc_offset is None:
            return None
        return (created_at - self._utc_offset).replace(tzinfo=UTC)

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self.dsn.connect()
            with self._conn.cursor() as cur:  # CURRENT_TIMESTAMP is in the session's zone
                cur.execute("SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), NOW(6))")
                (seconds,) = cur.fetchone()
            self._utc_offset = timedelta(seconds=round(float(seconds) / 60) * 60)
            if self._connected_before:
                self.stats.reconnects += 1
            self._connected_before = True
            log.info("mysql source connected to %s", self.dsn.display())
        return self._conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _store_cursor(self) -> None:
        assert self._mark is not None
        low = min(self._gaps) - 1 if self._gaps else self._mark
        if low != self._stored_cursor:
            self.journal.set_cursor(self.cursor_name, low)
            self._stored_cursor = low

    def _note_error(self, exc: BaseException) -> None:
        kind = "connection" if isinstance(exc, _CONNECTION_ERRORS) else "error"
        message = f"{kind}: {type(exc).__name__}: {exc}"
        self.stats.errors = [*self.stats.errors[-19:], message]
        log.warning("mysql source %s (%s); retrying", message, self.dsn.display())


def _hex(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(normalize_id(value), 16)
    except InvalidIdentifier:
        return None


def _decimal(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _callee_is_ours(code: SsnEvent | None, params: dict[str, str]) -> bool:
    """An 18/19 of an incoming call: ``number`` is our user (the callee), ``ext`` the caller."""
    answered_or_rejected = code in (SsnEvent.CALL_ANSWERED, SsnEvent.CALL_REJECTED)
    return answered_or_rejected and params.get("direction") == "1"
