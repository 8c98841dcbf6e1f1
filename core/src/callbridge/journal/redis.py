"""The journal in Redis: events in a stream, everything else in hashes and sorted sets.

Why this shape:

- Accepted events go to one stream with explicit ids ``<seq>-0``, ``seq`` taken from an
  ``INCR`` counter, so that ``StoredEvent.seq`` stays an integer that only grows, exactly as
  with SQLite, and ``events_after`` is an ``XRANGE`` from ``seq + 1``. The dedup key, the
  counter and the stream entry are written by one Lua script: Redis runs a script atomically,
  so a repeat returns the original ``seq`` and changes nothing, even under races.
- Every write that touches several keys (a delivery's state and its indexes, a call and the
  set of open calls) is one Lua script for the same reason: readers never see half a change.
- Durability is the server's business. With ``appendonly yes`` and ``appendfsync always``
  Redis fsyncs its append-only file before it answers any client, which is the equivalent of
  SQLite's ``synchronous=FULL``; and since every command run in one turn of its event loop
  shares that fsync, concurrent appends are group-committed for free. The journal checks the
  server's settings at start-up and warns (without changing them) when they do not give that.
- ``submit_event`` hands appends to one writer thread that sends everything queued in one
  pipeline: one round trip and one fsync for a burst instead of one per request.
- Keys share a prefix (``?prefix=`` in the URL, default ``callbridge``) so that several
  instances, or tests, can use one server. Keys are built inside the scripts, so this needs a
  standalone Redis (or one shard), not Redis Cluster.

The URL's password is never shown: ``repr``, logs and errors use a redacted form.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import typing
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from pydantic import BaseModel
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

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
from .batching import leftovers, take_batch
from .sqlite import JournalClosedError

log = logging.getLogger(__name__)

#: Layout version of the keys; a server holding a newer one is refused rather than misread.
SCHEMA_VERSION = 1
DEFAULT_PREFIX = "callbridge"
#: Rejected requests kept (approximately: the stream is trimmed with ``MAXLEN ~``).
REJECTED_KEPT = 10_000
#: Most appends sent in one pipeline by the writer thread.
_MAX_BATCH = 500
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:{}\-]{1,64}$")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
#: Separator inside composite hash fields (plugin names and call keys never contain it).
_SEP = "\x1f"

#: A stream read as redis-py gives it with ``decode_responses=True``.
_Entries = list[tuple[str, dict[str, str]]]

_EVENT_CLASSES: dict[str, type[BaseModel]] = {
    cls.__name__: cls for cls in typing.get_args(ev.AnyEvent) if isinstance(cls, type)
}


class DuplicateOriginateError(ValueError):
    """``create_originate`` for an external id that already exists."""


def _to_us(when: datetime) -> int:
    """Microseconds since the epoch; naive datetimes are taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // _MICRO


def _from_us(value: str | int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


def _opt_from_us(value: str | None) -> datetime | None:
    return None if value is None or value == "" else _from_us(value)


def _now() -> datetime:
    return datetime.now(UTC)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` and its query dropped, for display."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable redis URL>"
    auth = ""
    if parts.username or parts.password:
        auth = (parts.username or "") + (":***" if parts.password else "") + "@"
    return urlunsplit((parts.scheme, f"{auth}{host}{port}", parts.path, "", ""))


def _split_url(url: str) -> tuple[str, str, str]:
    """(URL for redis-py, key prefix, redacted URL); a bad URL is a ``ConfigurationError``."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises on a bad port
    except ValueError:
        raise ConfigurationError(f"CALLBRIDGE_JOURNAL: not a valid Redis URL ({shown})") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigurationError(
            f"CALLBRIDGE_JOURNAL: expected redis://host[:port][/db][?prefix=name] ({shown})"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for key, value in query if key == "prefix"]
    prefix = prefixes[-1] if prefixes else DEFAULT_PREFIX
    if not _PREFIX_RE.match(prefix):
        raise ConfigurationError(
            f"CALLBRIDGE_JOURNAL: prefix {prefix!r} must be 1-64 letters, digits or _.:{{}}-"
        )
    rest = urlencode([(key, value) for key, value in query if key != "prefix"])
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment))
    return clean, prefix, shown


# -- Lua scripts ------------------------------------------------------------------------------
# Each runs atomically on the server. Delivery scripts get the key prefix as ARGV[1] and build
# the per-plugin / per-call keys themselves.

#: KEYS: counter, dedup hash, stream. ARGV: dedup key, received at (us), source, raw, kind,
#: parsed, dedup window (us). The hash maps a dedup key to the seq of the *latest* event with
#: that key; a hit costs one more lookup, the stream entry's ``at``: less than the window away
#: from this event's, a repeat; further (or the entry is gone), a new event that takes the key
#: over. The hot path (a new key) is unchanged and the layout too: no migration, and an older
#: callbridge reading this journal sees what it expects.
_APPEND_LUA = """
local seq = redis.call('HGET', KEYS[2], ARGV[1])
if seq then
  local found = redis.call('XRANGE', KEYS[3], seq .. '-0', seq .. '-0')
  local entry = found[1]
  if entry then
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'at' then
        if math.abs(tonumber(ARGV[2]) - tonumber(fields[i + 1])) < tonumber(ARGV[7]) then
          return {tonumber(seq), 1}
        end
        break
      end
    end
  end
end
local n = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[3], string.format('%d-0', n), 'at', ARGV[2], 'source', ARGV[3],
           'key', ARGV[1], 'raw', ARGV[4], 'kind', ARGV[5], 'parsed', ARGV[6])
redis.call('HSET', KEYS[2], ARGV[1], n)
return {n, 0}
"""

#: KEYS: counter, stream. ARGV: MAXLEN (0: none), then field/value pairs.
_STREAM_ADD_LUA = """
local n = redis.call('INCR', KEYS[1])
local args = {'XADD', KEYS[2]}
if ARGV[1] ~= '0' then
  table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, ARGV[1])
end
table.insert(args, string.format('%d-0', n))
for i = 2, #ARGV do table.insert(args, ARGV[i]) end
redis.call(unpack(args))
return n
"""

#: KEYS: data hash, all calls zset, open calls zset, settled set. ARGV: key, json, score, settled.
_SAVE_CALL_LUA = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[4] == '1' or redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then
  redis.call('SADD', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
end
return 1
"""

_DELIVERY_PRELUDE = r"""
local p = ARGV[1]
local function dkey(id) return p .. ':delivery:' .. id end
local function member(id) return string.format('%012d', tonumber(id)) end
local function schedule(id, plugin, at)
  local m = member(id)
  if at == '' then
    redis.call('ZREM', p .. ':deliveries:due', m)
    redis.call('ZREM', p .. ':deliveries:due:' .. plugin, m)
  else
    redis.call('ZADD', p .. ':deliveries:due', at, m)
    redis.call('ZADD', p .. ':deliveries:due:' .. plugin, at, m)
  end
end
local function move(id, plugin, old, new)
  if old ~= new then
    if old ~= '' then
      redis.call('ZREM', p .. ':deliveries:state:' .. old, id)
      redis.call('HINCRBY', p .. ':deliveries:counts', plugin .. '\31' .. old, -1)
    end
    redis.call('ZADD', p .. ':deliveries:state:' .. new, id, id)
    redis.call('HINCRBY', p .. ':deliveries:counts', plugin .. '\31' .. new, 1)
  end
  redis.call('HSET', dkey(id), 'state', new)
end
"""

#: ARGV: prefix, call_key, plugin, action, now, payload. Returns the delivery's hash.
_ENQUEUE_LUA = (
    _DELIVERY_PRELUDE
    + r"""
local ik = ARGV[2] .. '\31' .. ARGV[3] .. '\31' .. ARGV[4]
local id = redis.call('HGET', p .. ':deliveries:index', ik)
if not id then
  id = redis.call('INCR', p .. ':deliveries:seq')
  redis.call('HSET', dkey(id), 'id', id, 'call_key', ARGV[2], 'plugin', ARGV[3],
             'action', ARGV[4], 'attempts', 0, 'created_at', ARGV[5], 'payload', ARGV[6])
  redis.call('HSET', p .. ':deliveries:index', ik, id)
  redis.call('ZADD', p .. ':deliveries:all', id, id)
  redis.call('SADD', p .. ':deliveries:call:' .. ARGV[2], id)
  redis.call('HSET', dkey(id), 'next_at', ARGV[5])
  schedule(id, ARGV[3], ARGV[5])
  move(id, ARGV[3], '', 'pending')
end
return redis.call('HGETALL', dkey(id))
"""
)

#: ARGV: prefix, id, result json ('' for none).
_COMPLETE_LUA = (
    _DELIVERY_PRELUDE
    + """
local id = ARGV[2]
local st = redis.call('HMGET', dkey(id), 'state', 'plugin')
if not st[1] or st[1] == 'done' then return 0 end
redis.call('HINCRBY', dkey(id), 'attempts', 1)
redis.call('HDEL', dkey(id), 'next_at')
if ARGV[3] == '' then redis.call('HDEL', dkey(id), 'result')
else redis.call('HSET', dkey(id), 'result', ARGV[3]) end
schedule(id, st[2], '')
move(id, st[2], st[1], 'done')
return 1
"""
)

#: ARGV: prefix, id, error, next attempt ('' makes it dead).
_FAIL_LUA = (
    _DELIVERY_PRELUDE
    + """
local id = ARGV[2]
local st = redis.call('HMGET', dkey(id), 'state', 'plugin')
if st[1] ~= 'pending' then return 0 end
redis.call('HINCRBY', dkey(id), 'attempts', 1)
redis.call('HSET', dkey(id), 'last_error', ARGV[3])
if ARGV[4] == '' then
  redis.call('HDEL', dkey(id), 'next_at')
  schedule(id, st[2], '')
  move(id, st[2], 'pending', 'dead')
else
  redis.call('HSET', dkey(id), 'next_at', ARGV[4])
  schedule(id, st[2], ARGV[4])
end
return 1
"""
)

#: ARGV: prefix, id, now.
_RETRY_LUA = (
    _DELIVERY_PRELUDE
    + """
local id = ARGV[2]
local st = redis.call('HMGET', dkey(id), 'state', 'plugin')
if st[1] ~= 'dead' then return 0 end
redis.call('HSET', dkey(id), 'attempts', 0, 'next_at', ARGV[3], 'retried_at', ARGV[3])
schedule(id, st[2], ARGV[3])
move(id, st[2], 'dead', 'pending')
return 1
"""
)


def _rebuild_event(kind: str, parsed: str, raw: dict[str, str]) -> ev.AnyEvent:
    """The typed event from its stored form (see ``restore_event``: never raises)."""
    return restore_event(_EVENT_CLASSES, kind, parsed, raw)


def _delivery(fields: Mapping[str, str]) -> Delivery:
    result = fields.get("result")
    return Delivery(
        id=int(fields["id"]),
        call_key=fields["call_key"],
        plugin=fields["plugin"],
        action=fields["action"],
        state=DeliveryState(fields["state"]),
        attempts=int(fields["attempts"]),
        created_at=_from_us(fields["created_at"]),
        next_attempt_at=_opt_from_us(fields.get("next_at")),
        last_error=fields.get("last_error"),
        payload=json.loads(fields["payload"]),
        result=None if result is None else json.loads(result),
        retried_at=_opt_from_us(fields.get("retried_at")),
    )


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    """A Lua ``HGETALL`` reply (a flat list) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


class _Append:
    __slots__ = ("args", "future")

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.future: Future[AppendResult] = Future()


class RedisJournal(Journal):
    """The ``Journal`` in a Redis server. Thread-safe; create one per process.

    ``url`` is ``redis://[user:password@]host[:port][/db][?prefix=name]`` (``rediss://`` for
    TLS); other query parameters go to redis-py (e.g. ``socket_timeout``).
    """

    def __init__(self, url: str, *, dedup_window: float = DEFAULT_DEDUP_WINDOW) -> None:
        if not dedup_window > 0:
            raise ValueError(
                f"dedup_window must be a positive number of seconds, not {dedup_window}"
            )
        #: Events with the same dedup key less than this far apart are repeats (microseconds).
        self._dedup_window_us = str(max(1, int(dedup_window * 1_000_000)))
        clean, self.prefix, self._shown = _split_url(url)
        self._closed = False
        # Retries re-send a command whose reply was lost. The event append, call and cursor
        # writes and delivery transitions are idempotent; a retried agent message or rejected
        # request may appear twice, which its readers tolerate.
        bad_option = f"CALLBRIDGE_JOURNAL: bad option in the Redis URL ({self._shown})"
        try:
            self._client: redis.Redis = redis.Redis.from_url(
                clean,
                decode_responses=True,
                socket_connect_timeout=5.0,
                socket_timeout=30.0,
                health_check_interval=30,
                retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3),
            )
        except ValueError as exc:
            raise ConfigurationError(f"{bad_option}: {exc}") from None
        try:
            try:
                self._client.ping()
            except TypeError as exc:  # an unknown query parameter reaches the connection
                raise ConfigurationError(f"{bad_option}: {exc}") from None
            self._check_schema()
            #: What the server's persistence gives (see ``_check_durability``).
            self.durability: str = self._check_durability()
        except BaseException as exc:
            self._client.close()
            if not isinstance(exc, redis.RedisError):
                raise
            raise ConfigurationError(
                f"CALLBRIDGE_JOURNAL: cannot use Redis at {self._shown}: {exc}"
            ) from None
        self._append = self._client.register_script(_APPEND_LUA)
        self._stream_add = self._client.register_script(_STREAM_ADD_LUA)
        self._save_call = self._client.register_script(_SAVE_CALL_LUA)
        self._enqueue = self._client.register_script(_ENQUEUE_LUA)
        self._complete = self._client.register_script(_COMPLETE_LUA)
        self._fail = self._client.register_script(_FAIL_LUA)
        self._retry = self._client.register_script(_RETRY_LUA)
        self._queue: queue.SimpleQueue[_Append | None] = queue.SimpleQueue()
        #: Makes "not closed, then queued" atomic, so no append is queued behind the stop.
        self._submit_lock = threading.Lock()
        self._writer = threading.Thread(
            target=self._write_loop, name=f"journal-writer:redis:{self.prefix}", daemon=True
        )
        self._writer.start()

    def __repr__(self) -> str:
        return f"RedisJournal({self._shown!r}, prefix={self.prefix!r})"

    # -- plumbing -------------------------------------------------------------------------
    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @property
    def _redis(self) -> redis.Redis:
        if self._closed:
            raise JournalClosedError("the journal is closed")
        return self._client

    def _check_schema(self) -> None:
        key = self._k("meta", "schema")
        self._client.set(key, SCHEMA_VERSION, nx=True)
        found = int(self._client.get(key) or SCHEMA_VERSION)
        if found > SCHEMA_VERSION:
            raise RuntimeError(
                f"the Redis journal at {self._shown} (prefix {self.prefix!r}) has layout "
                f"{found}, newer than this callbridge's {SCHEMA_VERSION}: upgrade callbridge"
            )

    def _check_durability(self) -> str:
        """Read (never change) the server's persistence settings; warn when not durable.

        Returns what the server gives: ``always``, ``everysec``, ``no`` (the ``appendfsync``
        policy), ``off`` (no append-only file) or ``unknown`` (``CONFIG`` refused).
        """
        try:
            config = cast(dict[str, str], self._client.config_get("append*"))
        except redis.ResponseError as exc:
            log.warning(
                "journal: cannot read the persistence settings of Redis at %s (%s); events "
                "are only as durable as its configuration: use appendonly yes and "
                "appendfsync always",
                self._shown,
                exc,
            )
            return "unknown"
        self._check_eviction()
        if config.get("appendonly") != "yes":
            log.warning(
                "journal: Redis at %s runs without an append-only file (appendonly no): "
                "events acknowledged since its last snapshot (if any) are lost when Redis "
                "crashes; set appendonly yes and appendfsync always",
                self._shown,
            )
            return "off"
        fsync = config.get("appendfsync", "unknown")
        if fsync == "everysec":
            log.warning(
                "journal: Redis at %s fsyncs its append-only file once a second "
                "(appendfsync everysec): a crash of its host can lose the last second of "
                "acknowledged events; set appendfsync always",
                self._shown,
            )
        elif fsync != "always":
            log.warning(
                "journal: Redis at %s leaves fsync to the OS (appendfsync %s): a crash of its "
                "host can lose acknowledged events; set appendfsync always",
                self._shown,
                fsync,
            )
        return fsync

    def _check_eviction(self) -> None:
        """Warn when the server may evict keys: an evicted key is journal data gone."""
        config = cast(dict[str, str], self._client.config_get("maxmemory*"))
        policy = config.get("maxmemory-policy", "noeviction")
        if config.get("maxmemory", "0") != "0" and policy != "noeviction":
            log.warning(
                "journal: Redis at %s may evict keys when full (maxmemory-policy %s): that "
                "would silently drop journal data; use maxmemory-policy noeviction",
                self._shown,
                policy,
            )

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
        pending = batch
        for _ in range(2):
            try:
                pipe = self._client.pipeline(transaction=False)
                for item in pending:
                    pipe.evalsha(self._append.sha, len(keys), *keys, *item.args)
                replies = pipe.execute(raise_on_error=False)
            except Exception as exc:  # the connection failed: fail these, keep serving
                for item in pending:
                    item.future.set_exception(exc)
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
                self._client.script_load(_APPEND_LUA)
            except Exception as exc:
                for item in again:
                    item.future.set_exception(exc)
                return
            pending = again
        for item in pending:
            item.future.set_exception(RuntimeError("Redis refused the append script twice"))

    # -- events ---------------------------------------------------------------------------
    def submit_event(
        self,
        event: ev.AnyEvent,
        *,
        raw: Mapping[str, str],
        source: str = "http",
        received_at: datetime | None = None,
    ) -> Future[AppendResult]:
        """Queue the append for the writer; the future resolves once Redis acknowledged it."""
        if self._closed:
            raise JournalClosedError("the journal is closed")
        item = _Append(
            [
                event.dedup_key,
                str(_to_us(received_at or _now())),
                source,
                _dumps(dict(raw)),
                type(event).__name__,
                event.model_dump_json(),
                self._dedup_window_us,
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
            _Entries,
            self._redis.xrange(self._k("events"), min=f"{max(seq, 0) + 1}-0", max="+", count=limit),
        )
        result = []
        for entry_id, fields in entries:
            params = stored_params(fields["raw"])
            result.append(
                StoredEvent(
                    seq=int(entry_id.partition("-")[0]),
                    received_at=_from_us(fields["at"]),
                    source=fields["source"],
                    dedup_key=fields["key"],
                    raw=params,
                    event=_rebuild_event(fields["kind"], fields["parsed"], params),
                )
            )
        return result

    def last_seq(self) -> int:
        """The highest sequence number taken so far (0 for an empty journal)."""
        return int(self._redis.get(self._k("events", "seq")) or 0)

    def get_cursor(self, name: str) -> int:
        return int(self._redis.hget(self._k("cursors"), name) or 0)

    def set_cursor(self, name: str, seq: int) -> None:
        self._redis.hset(self._k("cursors"), name, int(seq))

    # -- rejected requests ----------------------------------------------------------------
    def record_rejected(
        self, *, raw: str, reason: str, source: str = "http", remote: str | None = None
    ) -> int:
        body = _dumps({"at": _to_us(_now()), "source": source, "remote": remote, "reason": reason})
        keys = [self._k("rejected", "seq"), self._k("rejected")]
        args: list[str | int] = [REJECTED_KEPT, "d", body, "raw", raw]
        return int(self._stream_add(keys=keys, args=args, client=self._redis))

    def list_rejected(self, limit: int = 100) -> list[RejectedRequest]:
        if limit <= 0:
            return []
        entries = cast(_Entries, self._redis.xrevrange(self._k("rejected"), count=limit))
        result = []
        for entry_id, fields in entries:
            d = json.loads(fields["d"])
            result.append(
                RejectedRequest(
                    id=int(entry_id.partition("-")[0]),
                    received_at=_from_us(d["at"]),
                    source=d["source"],
                    remote=d["remote"],
                    reason=d["reason"],
                    raw=fields["raw"],
                )
            )
        return result

    # -- calls ----------------------------------------------------------------------------
    def save_call(self, call: Call, *, settled: bool = False) -> None:
        started = call.ring_at or call.answer_at or call.end_at or _now()
        self._save_call(
            keys=[
                self._k("calls"),
                self._k("calls", "by_start"),
                self._k("calls", "open"),
                self._k("calls", "settled"),
            ],
            args=[call.key, call.model_dump_json(), _to_us(started), int(settled)],
            client=self._redis,
        )

    def get_call(self, key: str) -> Call | None:
        data = self._redis.hget(self._k("calls"), key)
        return None if data is None else Call.model_validate_json(data)

    def list_calls(self, limit: int = 50, *, open_only: bool = False) -> list[Call]:
        """Most recent first by start time (calls starting in the same microsecond: by key)."""
        if limit <= 0:
            return []
        index = self._k("calls", "open" if open_only else "by_start")
        keys = cast(list[str], self._redis.zrevrange(index, 0, limit - 1))
        if not keys:
            return []
        rows = cast(list[str | None], self._redis.hmget(self._k("calls"), keys))
        return [Call.model_validate_json(row) for row in rows if row is not None]

    def is_settled(self, key: str) -> bool:
        """Whether the dispatcher is done with this call (see ``save_call``)."""
        return bool(self._redis.sismember(self._k("calls", "settled"), key))

    # -- originates -----------------------------------------------------------------------
    def create_originate(self, originate: Originate) -> None:
        created = self._redis.hsetnx(
            self._k("originates"), originate.external_id, originate.model_dump_json()
        )
        if not created:
            raise DuplicateOriginateError(
                f"an originate with external id {originate.external_id!r} already exists"
            )
        # The time index ``recent_originates`` reads (a crash before it only hides this one
        # request from correlation and expiry; its own ext_id still finds it).
        self._redis.zadd(
            self._k("originates", "by_time"),
            {originate.external_id: _to_us(originate.created_at)},
        )

    def get_originate(self, external_id: str) -> Originate | None:
        data = self._redis.hget(self._k("originates"), external_id)
        return None if data is None else Originate.model_validate_json(data)

    def update_originate(
        self, external_id: str, *, only_if: Collection[str] | None = None, **changes: Any
    ) -> Originate | None:
        unknown = set(changes) - set(Originate.model_fields) | ({"external_id"} & set(changes))
        if unknown:
            raise ValueError(f"cannot change originate field(s): {', '.join(sorted(unknown))}")
        key = self._k("originates")

        outcome: list[Originate | None] = [None]

        # Optimistic transaction: redis-py re-runs this when another writer touched the hash.
        def change(pipe: redis.client.Pipeline) -> None:
            outcome[0] = None
            data = cast(str | None, pipe.hget(key, external_id))
            if data is None:
                return
            current = Originate.model_validate_json(data)
            if only_if is not None and current.state not in only_if:
                outcome[0] = current
                return
            updated = Originate.model_validate({**current.model_dump(), **changes})
            pipe.multi()
            pipe.hset(key, external_id, updated.model_dump_json())
            outcome[0] = updated

        self._redis.transaction(change, key)
        return outcome[0]

    def recent_originates(self, since: datetime) -> list[Originate]:
        # A sorted set of external ids by creation time, kept beside the hash.
        ids = cast(
            list[str],
            self._redis.zrangebyscore(self._k("originates", "by_time"), _to_us(since), "+inf"),
        )
        if not ids:
            return []
        found = []
        for data in cast(list[str | None], self._redis.hmget(self._k("originates"), ids)):
            if data is not None:
                found.append(Originate.model_validate_json(data))
        found.sort(key=lambda o: o.created_at)
        return found

    # -- deliveries -----------------------------------------------------------------------
    def _fetch_deliveries(self, ids: Sequence[str | int]) -> list[Delivery]:
        if not ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for delivery_id in ids:
            pipe.hgetall(self._k("delivery", str(int(delivery_id))))
        return [_delivery(fields) for fields in pipe.execute() if fields]

    def enqueue_delivery(
        self, *, call_key: str, plugin: str, action: str, payload: dict[str, Any]
    ) -> Delivery:
        for name, value in (("call_key", call_key), ("plugin", plugin), ("action", action)):
            if _SEP in value:
                raise ValueError(f"{name} must not contain the character U+001F")
        flat = self._enqueue(
            args=[self.prefix, call_key, plugin, action, _to_us(_now()), _dumps(payload)],
            client=self._redis,
        )
        return _delivery(_pairs(flat))

    def due_deliveries(
        self, now: datetime, limit: int = 100, *, plugin: str | None = None
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        index = (
            self._k("deliveries", "due") if plugin is None else self._k("deliveries", "due", plugin)
        )
        members = cast(
            list[str], self._redis.zrangebyscore(index, "-inf", _to_us(now), start=0, num=limit)
        )
        # A delivery completed between the two reads is left out, as a snapshot would.
        return [d for d in self._fetch_deliveries(members) if d.state is DeliveryState.PENDING]

    def complete_delivery(self, delivery_id: int, result: dict[str, Any] | None) -> None:
        body = "" if result is None else _dumps(result)
        self._complete(args=[self.prefix, int(delivery_id), body], client=self._redis)

    def fail_delivery(
        self, delivery_id: int, *, error: str, next_attempt_at: datetime | None
    ) -> None:
        due = "" if next_attempt_at is None else _to_us(next_attempt_at)
        self._fail(args=[self.prefix, int(delivery_id), error, due], client=self._redis)

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        fields = cast(
            dict[str, str], self._redis.hgetall(self._k("delivery", str(int(delivery_id))))
        )
        return _delivery(fields) if fields else None

    def list_deliveries(
        self,
        *,
        state: DeliveryState | None = None,
        call_keys: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        wanted = None if state is None else DeliveryState(state)
        if call_keys is not None:
            if not call_keys:
                return []
            ids = cast(
                set[str], self._redis.sunion([self._k("deliveries", "call", k) for k in call_keys])
            )
            found = self._fetch_deliveries(sorted(ids, key=int, reverse=True))
            if wanted is not None:
                found = [d for d in found if d.state is wanted]
            return found[:limit]
        index = self._k("deliveries", "all" if wanted is None else f"state:{wanted.value}")
        members = cast(list[str], self._redis.zrevrange(index, 0, limit - 1))
        found = self._fetch_deliveries(members)
        return found if wanted is None else [d for d in found if d.state is wanted]

    def delivery_counts(self) -> list[tuple[str, str, int]]:
        counts = cast(dict[str, str], self._redis.hgetall(self._k("deliveries", "counts")))
        rows = []
        for field, n in counts.items():
            plugin, _, state = field.rpartition(_SEP)
            if int(n) > 0:
                rows.append((plugin, state, int(n)))
        return sorted(rows)

    def retry_delivery(self, delivery_id: int) -> bool:
        done = self._retry(args=[self.prefix, int(delivery_id), _to_us(_now())], client=self._redis)
        return bool(done)

    # -- agent event stream ---------------------------------------------------------------
    def append_agent_event(self, extension: str, kind: str, data: dict[str, Any]) -> AgentEvent:
        at = _now()
        new_id = self._stream_add(
            keys=[self._k("agent", "seq"), self._k("agent", extension)],
            args=[0, "at", _to_us(at), "kind", kind, "data", _dumps(data)],
            client=self._redis,
        )
        return AgentEvent(id=int(new_id), extension=extension, at=at, kind=kind, data=data)

    def agent_events_after(
        self, extension: str, after_id: int, limit: int = 200
    ) -> list[AgentEvent]:
        if limit <= 0:
            return []
        start = f"{max(after_id, 0) + 1}-0"
        entries = cast(
            _Entries,
            self._redis.xrange(self._k("agent", extension), min=start, max="+", count=limit),
        )
        return [
            AgentEvent(
                id=int(entry_id.partition("-")[0]),
                extension=extension,
                at=_from_us(fields["at"]),
                kind=fields["kind"],
                data=json.loads(fields["data"]),
            )
            for entry_id, fields in entries
        ]

    # -- life cycle -----------------------------------------------------------------------
    def check_writable(self) -> None:
        """A write round trip; raises (``redis.RedisError``) when the server refuses writes."""
        self._redis.set(self._k("meta", "last_check"), _now().isoformat())

    def close(self) -> None:
        if self._closed:
            return
        with self._submit_lock:
            self._closed = True
            self._queue.put(None)
        self._writer.join()
        self._client.close()

    # -- retention ------------------------------------------------------------------------
    #: Entries read, checked and deleted per round trip by ``prune``.
    _PRUNE_CHUNK = 1000

    #: KEYS: stream, dedup hash. ARGV: number of ids n, ids x n, then (dedup key, seq) pairs.
    #: A dedup key is dropped only while it still names the pruned event (a newer event with
    #: the same key owns it otherwise); one script, so an append never sees half of it.
    _PRUNE_STREAM_LUA = """
local n = tonumber(ARGV[1])
for i = n + 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
local deleted = 0
for i = 2, n + 1 do deleted = deleted + redis.call('XDEL', KEYS[1], ARGV[i]) end
return deleted
"""

    #: ARGV: prefix, cutoff (us), ids. Deletes each delivery that is still done or dead and
    #: older than the cutoff, with every index that names it; returns how many.
    _PRUNE_DELIVERIES_LUA = r"""
local p = ARGV[1]
local cutoff = tonumber(ARGV[2])
local n = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local k = p .. ':delivery:' .. id
  local f = redis.call('HMGET', k, 'state', 'plugin', 'call_key', 'action', 'created_at',
                       'retried_at')
  local st = f[1]
  local at = tonumber(f[6] or f[5])
  if (st == 'done' or st == 'dead') and at and at < cutoff then
    redis.call('DEL', k)
    redis.call('HDEL', p .. ':deliveries:index', f[3] .. '\31' .. f[2] .. '\31' .. f[4])
    redis.call('ZREM', p .. ':deliveries:all', id)
    redis.call('SREM', p .. ':deliveries:call:' .. f[3], id)
    redis.call('ZREM', p .. ':deliveries:state:' .. st, id)
    redis.call('HINCRBY', p .. ':deliveries:counts', f[2] .. '\31' .. st, -1)
    local m = string.format('%012d', tonumber(id))
    redis.call('ZREM', p .. ':deliveries:due', m)
    redis.call('ZREM', p .. ':deliveries:due:' .. f[2], m)
    n = n + 1
  end
end
return n
"""

    def record_rejected_fast(
        self, *, raw: str, reason: str, source: str = "http", remote: str | None = None
    ) -> int:
        """``record_rejected``: Redis fsyncs as its configuration says, per server, not per
        write, so there is no cheaper write to choose (the ingress rate limit bounds it)."""
        return self.record_rejected(raw=raw, reason=reason, source=source, remote=remote)

    def prune(self, older_than: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """See ``Journal.prune``. Streams are walked from their oldest entry and stop at the
        first one to keep, so entries are deleted oldest first and never past a cursor."""
        cutoff = _to_us(older_than)
        cursors = cast(dict[str, str], self._redis.hgetall(self._k("cursors")))
        floor = events_floor({name: int(seq) for name, seq in cursors.items()})

        def event_kept(seq: int, fields: Mapping[str, str]) -> bool:
            return seq > floor or _prune_int(fields.get("at")) >= cutoff

        def agent_kept(seq: int, fields: Mapping[str, str]) -> bool:
            return _prune_int(fields.get("at")) >= cutoff

        def rejected_kept(seq: int, fields: Mapping[str, str]) -> bool:
            try:
                at = json.loads(fields.get("d", "")).get("at")
            except (ValueError, AttributeError):
                at = None
            return _prune_int(at) >= cutoff

        counts = {
            "events": self._prune_stream(self._k("events"), event_kept, dry_run, dedup=True),
            "agent_events": 0,
            "rejected": self._prune_stream(self._k("rejected"), rejected_kept, dry_run),
        }
        agent_seq = self._k("agent", "seq")
        for key in self._redis.scan_iter(match=self._k("agent", "*"), _type="stream"):
            if key != agent_seq:
                counts["agent_events"] += self._prune_stream(key, agent_kept, dry_run)
        counts["calls"] = self._prune_calls(cutoff, dry_run)
        counts["deliveries"] = self._prune_deliveries(cutoff, dry_run)
        counts["originates"] = self._prune_originates(cutoff, dry_run)
        return counts

    def _prune_stream(
        self,
        key: str,
        kept: typing.Callable[[int, Mapping[str, str]], bool],
        dry_run: bool,
        *,
        dedup: bool = False,
    ) -> int:
        """Delete a stream's entries from the oldest up to the first one ``kept`` keeps."""
        script = self._client.register_script(self._PRUNE_STREAM_LUA)
        total = 0
        start = "-"
        while True:
            entries = cast(
                _Entries, self._redis.xrange(key, min=start, max="+", count=self._PRUNE_CHUNK)
            )
            doomed: _Entries = []
            stop = False
            for entry_id, fields in entries:
                if kept(int(entry_id.partition("-")[0]), fields):
                    stop = True
                    break
                doomed.append((entry_id, fields))
            if doomed and not dry_run:
                args: list[str] = [str(len(doomed)), *(entry_id for entry_id, _ in doomed)]
                if dedup:
                    for entry_id, fields in doomed:
                        if "key" in fields:
                            args += [fields["key"], entry_id.partition("-")[0]]
                script(keys=[key, self._k("events", "dedup")], args=args, client=self._redis)
            total += len(doomed)
            if stop or len(entries) < self._PRUNE_CHUNK:
                return total
            start = f"{int(entries[-1][0].partition('-')[0]) + 1}-0"

    def _prune_calls(self, cutoff: int, dry_run: bool) -> int:
        """Settled calls started before the cutoff and without a pending delivery."""
        by_start = self._k("calls", "by_start")
        settled = self._k("calls", "settled")
        total = 0
        offset = 0
        while True:
            keys = cast(
                list[str],
                self._redis.zrangebyscore(
                    by_start, "-inf", f"({cutoff}", start=offset, num=self._PRUNE_CHUNK
                ),
            )
            if not keys:
                return total
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.sismember(settled, key)
                pipe.smembers(self._k("deliveries", "call", key))
            replies = pipe.execute()
            candidates: dict[str, list[str]] = {
                key: sorted(ids)
                for key, is_settled, ids in zip(keys, replies[::2], replies[1::2], strict=True)
                if is_settled
            }
            pipe = self._redis.pipeline(transaction=False)
            for ids in candidates.values():
                for delivery_id in ids:
                    pipe.hget(self._k("delivery", delivery_id), "state")
            states = iter(pipe.execute())
            doomed = []
            for key, ids in candidates.items():
                own = [next(states) for _ in ids]  # every reply consumed, in order
                if "pending" not in own:
                    doomed.append(key)
            if doomed and not dry_run:
                pipe = self._redis.pipeline(transaction=True)
                pipe.hdel(self._k("calls"), *doomed)
                pipe.zrem(by_start, *doomed)
                pipe.zrem(self._k("calls", "open"), *doomed)
                pipe.srem(settled, *doomed)
                pipe.execute()
                offset += len(keys) - len(doomed)
            else:
                offset += len(keys)
            total += len(doomed)
            if len(keys) < self._PRUNE_CHUNK:
                return total

    def _prune_deliveries(self, cutoff: int, dry_run: bool) -> int:
        """Done and dead deliveries created (or last retried by hand) before the cutoff."""
        script = self._client.register_script(self._PRUNE_DELIVERIES_LUA)
        total = 0
        for state in (DeliveryState.DONE, DeliveryState.DEAD):
            index = self._k("deliveries", f"state:{state.value}")
            low = 0
            while True:
                ids = cast(
                    list[str],
                    self._redis.zrangebyscore(index, low, "+inf", start=0, num=self._PRUNE_CHUNK),
                )
                if not ids:
                    break
                low = int(ids[-1]) + 1
                pipe = self._redis.pipeline(transaction=False)
                for delivery_id in ids:
                    pipe.hmget(self._k("delivery", delivery_id), "created_at", "retried_at")
                doomed = [
                    delivery_id
                    for delivery_id, (created, retried) in zip(ids, pipe.execute(), strict=True)
                    if _prune_int(retried or created, cutoff) < cutoff
                ]
                if doomed and not dry_run:
                    total += int(script(args=[self.prefix, cutoff, *doomed], client=self._redis))
                elif doomed:
                    total += len(doomed)
                if len(ids) < self._PRUNE_CHUNK:
                    break
        return total

    def _prune_originates(self, cutoff: int, dry_run: bool) -> int:
        """Originates created before the cutoff (click-to-call requests of long ago)."""
        key = self._k("originates")
        doomed: list[str] = []
        for external_id, data in self._redis.hscan_iter(key, count=self._PRUNE_CHUNK):
            try:
                created = _to_us(Originate.model_validate_json(data).created_at)
            except ValueError:
                continue  # unreadable: left for a person to look at
            if created < cutoff:
                doomed.append(external_id)
        if not dry_run:
            for i in range(0, len(doomed), self._PRUNE_CHUNK):
                self._redis.hdel(key, *doomed[i : i + self._PRUNE_CHUNK])
                self._redis.zrem(
                    self._k("originates", "by_time"), *doomed[i : i + self._PRUNE_CHUNK]
                )
        return len(doomed)


def _prune_int(value: object, default: int = 0) -> int:
    """A stored time as an int; a damaged one counts as ``default`` (old: prunable)."""
    try:
        return int(str(value))
    except ValueError:
        return default
