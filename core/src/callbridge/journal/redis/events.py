"""Streams in the Redis journal: accepted events (with their writer thread), cursors,
rejected requests and the agents' event streams."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from datetime import datetime
from typing import Any, cast

import redis
from redis.commands.core import Script

from ...voispeed import events as ev
from ..base import AgentEvent, AppendResult, JournalClosedError, RejectedRequest, StoredEvent
from ..batching import leftovers, take_batch
from ..codec import decode_event, dumps, encode_event, from_us, to_us, utc_now
from ..tenancy import DEFAULT_COMPANY, agent_of, company_of
from .connection import RedisStore
from .scripts import APPEND_LUA

#: Rejected requests kept (approximately: the stream is trimmed with ``MAXLEN ~``).
REJECTED_KEPT = 10_000
#: Most appends sent in one pipeline by the writer thread.
_MAX_BATCH = 500

#: A stream read as redis-py gives it with ``decode_responses=True``.
Entries = list[tuple[str, dict[str, str]]]


def stored_event(entry_id: str, fields: Mapping[str, str]) -> StoredEvent:
    """An entry of the events stream as the journal hands it out."""
    params, event = decode_event(fields["kind"], fields["parsed"], fields["raw"])
    return StoredEvent(
        seq=int(entry_id.partition("-")[0]),
        received_at=from_us(fields["at"]),
        source=fields["source"],
        dedup_key=fields["key"],
        raw=params,
        event=event,
    )


def rejected_request(entry_id: str, fields: Mapping[str, str]) -> RejectedRequest:
    """An entry of the rejected stream as the journal hands it out."""
    d = json.loads(fields["d"])
    return RejectedRequest(
        id=int(entry_id.partition("-")[0]),
        received_at=from_us(d["at"]),
        source=d["source"],
        remote=d["remote"],
        reason=d["reason"],
        raw=fields["raw"],
    )


class _Append:
    """One queued append: the append script's arguments and the future its caller waits on."""

    __slots__ = ("args", "future")

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.future: Future[AppendResult] = Future()


class RedisEvents(RedisStore):
    """The event stream and its writer, cursors, rejected requests and agent streams."""

    #: Events with the same dedup key less than this far apart are repeats (microseconds).
    _dedup_window_us: str
    _append: Script
    _stream_add: Script
    _agent_add: Script

    def _start_writer(self) -> None:
        """Start the thread that sends queued appends (see ``_send_appends``)."""
        self._queue: queue.SimpleQueue[_Append | None] = queue.SimpleQueue()
        #: Makes "not closed, then queued" atomic, so no append is queued behind the stop.
        self._submit_lock = threading.Lock()
        self._writer = threading.Thread(
            target=self._write_loop, name=f"journal-writer:redis:{self.prefix}", daemon=True
        )
        self._writer.start()

    def _stop_writer(self) -> None:
        """Refuse new appends, let the writer send what is queued, and wait for it."""
        with self._submit_lock:
            self._closed = True
            self._queue.put(None)
        self._writer.join()

    def _write_loop(self) -> None:
        """Send queued appends in pipelines; resolve each future with its own outcome."""
        stopping = False
        while not stopping:
            batch, stopping = take_batch(self._queue, _MAX_BATCH)
            if batch:
                self._send_appends(batch)
        for left in leftovers(self._queue):
            left.future.set_exception(JournalClosedError("the journal is closed"))

    def _send_appends(self, batch: list[_Append]) -> None:
        """One pipeline of ``EVALSHA`` for the batch (one round trip, one fsync on the server).

        Plain ``EVALSHA`` rather than redis-py's pipeline scripts, which ask ``SCRIPT EXISTS``
        on every execute; when the server lost its script cache (a restart), the script is
        loaded and the refused appends are sent again (appends are idempotent).
        """
        keys = [self._k("events", "seq"), self._k("events", "dedup"), self._k("events")]
        companies = self._k("companies")
        pending = batch
        for _ in range(2):
            try:
                pipe = self._client.pipeline(transaction=False)
                for item in pending:
                    index = self._k("co", item.args[-1], "events")
                    pipe.evalsha(self._append.sha, 5, *keys, index, companies, *item.args)
                if self._wait_replicas:  # acked only once on enough replicas (a failover)
                    pipe.execute_command(  # type: ignore[no-untyped-call]
                        "WAIT", self._wait_replicas, self._wait_timeout_ms
                    )
                replies = pipe.execute(raise_on_error=False)
                short: Exception | None = (
                    self._replicated(replies.pop()) if self._wait_replicas else None
                )
            except Exception as exc:  # the connection failed: fail these, keep serving
                short = exc
            if short is not None:
                for item in pending:
                    item.future.set_exception(short)
                return
            again: list[_Append] = []
            for item, reply in zip(pending, replies, strict=True):
                if isinstance(reply, redis.exceptions.NoScriptError):
                    again.append(item)
                elif isinstance(reply, Exception):
                    item.future.set_exception(reply)
                else:
                    seq, duplicate = reply
                    item.future.set_result(AppendResult(seq=int(seq), duplicate=bool(duplicate)))
            if not again:
                return
            try:
                self._client.script_load(APPEND_LUA)
            except Exception as exc:
                for item in again:
                    item.future.set_exception(exc)
                return
            pending = again
        for item in pending:
            item.future.set_exception(RuntimeError("Redis refused the append script twice"))

    def submit_event(
        self,
        event: ev.AnyEvent,
        *,
        raw: Mapping[str, str],
        source: str = "http",
        received_at: datetime | None = None,
        company: str | None = None,
    ) -> Future[AppendResult]:
        """Queue the append for the writer; the future resolves once Redis acknowledged it."""
        if self._closed:
            raise JournalClosedError("the journal is closed")
        stored = encode_event(event, raw, received_at)
        item = _Append(
            [
                stored.dedup_key,
                str(stored.received_at),
                source,
                stored.raw,
                stored.kind,
                stored.parsed,
                self._dedup_window_us,
                company or company_of(event),
            ]
        )
        with self._submit_lock:
            if self._closed:
                raise JournalClosedError("the journal is closed")
            self._queue.put(item)
        return item.future

    def events_after(self, seq: int, limit: int = 500) -> list[StoredEvent]:
        if limit <= 0:
            return []
        entries = cast(
            Entries,
            self._redis.xrange(self._k("events"), min=f"{max(seq, 0) + 1}-0", max="+", count=limit),
        )
        return [stored_event(entry_id, fields) for entry_id, fields in entries]

    def last_seq(self) -> int:
        """The highest sequence number taken so far (0 for an empty journal)."""
        return int(self._redis.get(self._k("events", "seq")) or 0)

    def get_cursor(self, name: str) -> int:
        return int(self._redis.hget(self._k("cursors"), name) or 0)

    def set_cursor(self, name: str, seq: int) -> None:
        self._redis.hset(self._k("cursors"), name, int(seq))

    def record_rejected(
        self,
        *,
        raw: str,
        reason: str,
        source: str = "http",
        remote: str | None = None,
        company: str | None = None,
    ) -> int:
        body = dumps({"at": to_us(utc_now()), "source": source, "remote": remote, "reason": reason})
        keys = [
            self._k("rejected", "seq"),
            self._k("rejected"),
            *self._indexes(company, "rejected"),
        ]
        args: list[str | int] = [REJECTED_KEPT, company or "", "d", body, "raw", raw]
        return int(self._stream_add(keys=keys, args=args, client=self._redis))

    def record_rejected_fast(
        self,
        *,
        raw: str,
        reason: str,
        source: str = "http",
        remote: str | None = None,
        company: str | None = None,
    ) -> int:
        """``record_rejected``: Redis fsyncs as its configuration says, per server, not per
        write, so there is no cheaper write to choose (the ingress rate limit bounds it)."""
        return self.record_rejected(
            raw=raw, reason=reason, source=source, remote=remote, company=company
        )

    def _indexes(self, company: str | None, kind: str) -> list[str]:
        """The companies set and ``company``'s index of ``kind`` (a placeholder for none)."""
        return [self._k("companies"), self._k("co", company or DEFAULT_COMPANY, kind)]

    def list_rejected(self, limit: int = 100) -> list[RejectedRequest]:
        if limit <= 0:
            return []
        entries = cast(Entries, self._redis.xrevrange(self._k("rejected"), count=limit))
        return [rejected_request(entry_id, fields) for entry_id, fields in entries]

    def append_agent_event(
        self, extension: str, kind: str, data: dict[str, Any], *, company: str | None = None
    ) -> AgentEvent:
        at = utc_now()
        agent, company = agent_of(extension, company)
        # The bell names the agent's stream as its subscribers know it: ``201``, or
        # ``201@acme`` in another company than the default one.
        bell = agent if company == DEFAULT_COMPANY else f"{agent}@{company}"
        new_id = self._agent_add(
            keys=[
                self._k("agent", "seq"),
                self._agent_key(agent, company),
                self._k("agent", "bell"),
                *self._indexes(company, "agents"),
            ],
            args=[bell, company, agent, "at", to_us(at), "kind", kind, "data", dumps(data)],
            client=self._redis,
        )
        return AgentEvent(id=int(new_id), extension=extension, at=at, kind=kind, data=data)

    def agent_events_after(
        self, extension: str, after_id: int, limit: int = 200, *, company: str | None = None
    ) -> list[AgentEvent]:
        if limit <= 0:
            return []
        start = f"{max(after_id, 0) + 1}-0"
        key = self._agent_key(*agent_of(extension, company))
        entries = cast(Entries, self._redis.xrange(key, min=start, max="+", count=limit))
        return [
            AgentEvent(
                id=int(entry_id.partition("-")[0]),
                extension=extension,
                at=from_us(fields["at"]),
                kind=fields["kind"],
                data=json.loads(fields["data"]),
            )
            for entry_id, fields in entries
        ]
