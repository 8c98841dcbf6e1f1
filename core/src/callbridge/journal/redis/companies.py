"""One company's data in the Redis journal: listing, export, purge, and the layout upgrade.

Key scheme (layout 2): everything stays where layout 1 kept it, and each company has
indexes of its own, so that one company is selected by reading its indexes, never by
scanning everyone's data:

- ``companies``: the set of company names;
- ``co:<company>:events`` and ``co:<company>:rejected``: sorted sets of stream ids (score =
  id), trimmed with their streams;
- ``co:<company>:calls``, ``:originates``, ``:wrapups``, ``:recordings`` (keys) and
  ``:deliveries`` (ids): sets; ``calls:company`` and ``originates:company`` map a key back
  to its company (for prune), and a delivery's hash has a ``company`` field;
- ``co:<company>:agents``: the extensions with a stream; the streams themselves are
  ``agent:<extension>`` in the default company and ``agent:<extension>@<company>`` in others.

A layout-1 journal is upgraded on open (``upgrade_layout``): everything in it belongs to
``default`` (the only company there was), except rejected requests, whose company is not
known.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, cast

from ..base import AgentEvent
from ..codec import from_us
from ..tenancy import DEFAULT_COMPANY, RECORD_KINDS, empty_counts, export_line, stored_json
from .deliveries import RedisDeliveries
from .events import Entries, rejected_request, stored_event
from .pruning import RedisPruning
from .scripts import PRUNE_STREAM_LUA, PURGE_DELIVERIES_LUA

log = logging.getLogger(__name__)

#: Members read (and deleted) per round trip.
_CHUNK = 500

#: The index of each kind of record: (index kind, sorted set?).
_INDEX: dict[str, tuple[str, bool]] = {
    "event": ("events", True),
    "rejected": ("rejected", True),
    "call": ("calls", False),
    "originate": ("originates", False),
    "wrapup": ("wrapups", False),
    "recording": ("recordings", False),
    "delivery": ("deliveries", False),
    "agent_event": ("agents", False),
}


def _recording(stored: str) -> dict[str, Any]:
    """A stored recording (``{"reference", "at"}``) as exported: its time as a datetime."""
    value = stored_json(stored)
    if not isinstance(value, dict):
        return {"reference": value}
    at = value.get("at")
    return {"reference": value.get("reference"), "saved_at": from_us(at) if at else None}


class RedisCompanies(RedisDeliveries, RedisPruning):
    """``companies``, ``export_company``, ``purge_company`` and the layout upgrade."""

    def companies(self) -> list[str]:
        return sorted(cast(set[str], self._redis.smembers(self._k("companies"))))

    def holds_company(self, company: str) -> bool:
        return bool(self._redis.sismember(self._k("companies"), company))

    def _members(self, company: str, kind: str) -> Iterator[list[str]]:
        """The members of ``company``'s index of ``kind``, in chunks (sorted sets in order)."""
        index, ordered = _INDEX[kind]
        key = self._k("co", company, index)
        if ordered:
            low = "-inf"
            while True:
                ids = cast(
                    list[str], self._redis.zrangebyscore(key, low, "+inf", start=0, num=_CHUNK)
                )
                if ids:
                    yield ids
                if len(ids) < _CHUNK:
                    return
                low = f"({ids[-1]}"
        else:
            chunk: list[str] = []
            for member in self._redis.sscan_iter(key, count=_CHUNK):
                chunk.append(str(member))
                if len(chunk) >= _CHUNK:
                    yield sorted(chunk)
                    chunk = []
            if chunk:
                yield sorted(chunk)

    def _entries(self, stream: str, ids: list[str]) -> Entries:
        """The entries of ``stream`` with these ids that are still there."""
        pipe = self._redis.pipeline(transaction=False)
        for i in ids:
            pipe.xrange(stream, min=f"{i}-0", max=f"{i}-0")
        return [entry for found in pipe.execute() for entry in found]

    def _hash_values(self, key: str, fields: list[str]) -> list[tuple[str, str]]:
        values = cast(list[str | None], self._redis.hmget(key, fields))
        return [(f, v) for f, v in zip(fields, values, strict=True) if v is not None]

    def _records(self, company: str, kind: str, ids: list[str]) -> list[Any]:
        """The records of one chunk of ``company``'s index of ``kind``."""
        if kind == "event":
            return [stored_event(i, f) for i, f in self._entries(self._k("events"), ids)]
        if kind == "rejected":
            return [rejected_request(i, f) for i, f in self._entries(self._k("rejected"), ids)]
        if kind == "call":
            settled = self._k("calls", "settled")
            return [
                {
                    "settled": bool(self._redis.sismember(settled, key)),
                    "call": stored_json(v),
                }
                for key, v in self._hash_values(self._k("calls"), ids)
            ]
        if kind == "originate":
            found = self._hash_values(self._k("originates"), ids)
            return [stored_json(v) for _, v in found]
        if kind == "wrapup":
            return [stored_json(v) for _, v in self._hash_values(self._k("wrapups"), ids)]
        if kind == "recording":
            found = self._hash_values(self._k("recordings"), ids)
            return [{"call_key": key, **_recording(v)} for key, v in found]
        if kind == "delivery":
            return self._fetch_deliveries(ids)
        return [event for extension in ids for event in self._agent_stream(company, extension)]

    def _agent_stream(self, company: str, extension: str) -> Iterator[AgentEvent]:
        after = 0
        while True:
            page = self.agent_events_after(extension, after, _CHUNK, company=company)
            yield from page
            if len(page) < _CHUNK:
                return
            after = page[-1].id

    def export_company(self, company: str) -> Iterator[str]:
        for kind in RECORD_KINDS:
            for ids in self._members(company, kind):
                for record in self._records(company, kind, ids):
                    yield export_line(kind, company, record)

    # -- purge ----------------------------------------------------------------------------
    def purge_company(self, company: str, *, dry_run: bool = False) -> dict[str, int]:
        counts = empty_counts()
        purgers: dict[str, Callable[[str, list[str]], int]] = {
            "event": self._purge_events,
            "rejected": self._purge_rejected,
            "call": self._purge_calls,
            "originate": self._purge_originates,
            "wrapup": self._purge_wrapups,
            "recording": self._purge_recordings,
            "delivery": self._purge_deliveries,
            "agent_event": self._purge_agents,
        }
        for kind in RECORD_KINDS:
            for ids in self._members(company, kind):
                if dry_run:
                    counts[kind] += len(self._records(company, kind, ids))
                else:
                    counts[kind] += purgers[kind](company, ids)
            if not dry_run:
                self._redis.delete(self._k("co", company, _INDEX[kind][0]))
        if not dry_run:
            self._redis.srem(self._k("companies"), company)
        return counts

    def _purge_events(self, company: str, ids: list[str]) -> int:
        entries = self._entries(self._k("events"), ids)
        args = [str(len(entries)), *(i for i, _ in entries)]
        for entry_id, fields in entries:
            if "key" in fields:
                args += [fields["key"], entry_id.partition("-")[0]]
        script = self._client.register_script(PRUNE_STREAM_LUA)
        keys = [self._k("events"), self._k("events", "dedup")]
        return int(script(keys=keys, args=args, client=self._redis)) if entries else 0

    def _purge_rejected(self, company: str, ids: list[str]) -> int:
        return int(self._redis.xdel(self._k("rejected"), *(f"{i}-0" for i in ids)))

    def _purge_calls(self, company: str, keys: list[str]) -> int:
        pipe = self._forget_companies("calls", keys)
        pipe.hdel(self._k("calls"), *keys)
        pipe.zrem(self._k("calls", "by_start"), *keys)
        pipe.zrem(self._k("calls", "open"), *keys)
        pipe.srem(self._k("calls", "settled"), *keys)
        return int(pipe.execute()[len(keys) + 1])

    def _purge_originates(self, company: str, ids: list[str]) -> int:
        pipe = self._forget_companies("originates", ids)
        pipe.hdel(self._k("originates"), *ids)
        pipe.zrem(self._k("originates", "by_time"), *ids)
        return int(pipe.execute()[len(ids) + 1])

    def _purge_wrapups(self, company: str, keys: list[str]) -> int:
        return int(self._redis.hdel(self._k("wrapups"), *keys))

    def _purge_recordings(self, company: str, keys: list[str]) -> int:
        return int(self._redis.hdel(self._k("recordings"), *keys))

    def _purge_deliveries(self, company: str, ids: list[str]) -> int:
        script = self._client.register_script(PURGE_DELIVERIES_LUA)
        return int(script(args=[self.prefix, company, *ids], client=self._redis))

    def _purge_agents(self, company: str, extensions: list[str]) -> int:
        pipe = self._redis.pipeline(transaction=False)
        for extension in extensions:
            pipe.xlen(self._agent_key(extension, company))
        counts = pipe.execute()
        self._redis.delete(*(self._agent_key(x, company) for x in extensions))
        return sum(int(n) for n in counts)

    # -- layout 1 -> 2 --------------------------------------------------------------------
    def upgrade_layout(self) -> None:
        """Index a layout-1 journal's data under ``default`` (see the module docstring).

        Only what has no company yet (or ``default``'s): another process of the new layout
        may already be writing other companies' data while this one upgrades. Idempotent
        (set additions), so an upgrade run twice, at once or after a crash, gives the same
        indexes."""
        d = DEFAULT_COMPANY
        client = self._client
        start = "-"
        while entries := cast(Entries, client.xrange(self._k("events"), min=start, count=_CHUNK)):
            seqs = {
                i.partition("-")[0]: int(i.partition("-")[0])
                for i, fields in entries
                if fields.get("company", d) == d
            }
            if seqs:
                client.zadd(self._k("co", d, "events"), seqs)
            start = f"({entries[-1][0]}"
        for kind in ("calls", "originates"):
            owners = self._k(kind, "company")
            for key in client.hscan_iter(self._k(kind), count=_CHUNK, no_values=True):
                if client.hget(owners, key) in (None, d):
                    client.hset(owners, key, d)
                    client.sadd(self._k("co", d, kind), key)
        calls = self._k("calls", "company")
        for kind in ("wrapups", "recordings"):
            for key in client.hscan_iter(self._k(kind), count=_CHUNK, no_values=True):
                if client.hget(calls, key) in (None, d):
                    client.sadd(self._k("co", d, kind), key)
        self._upgrade_deliveries_and_agents()
        if any(client.exists(self._k("co", d, kind)) for kind, _ in _INDEX.values()):
            client.sadd(self._k("companies"), d)
        log.info("journal: Redis layout upgraded to per-company indexes (prefix %s)", self.prefix)

    def _upgrade_deliveries_and_agents(self) -> None:
        """``upgrade_layout`` for deliveries (a ``company`` field) and the agents' streams
        (``agent:<extension>``; another company's have ``@<company>`` in their key)."""
        d = DEFAULT_COMPANY
        client = self._client
        for delivery_id in cast(list[str], client.zrange(self._k("deliveries", "all"), 0, -1)):
            key = self._k("delivery", delivery_id)
            if client.hget(key, "company") in (None, d):
                client.hset(key, "company", d)
                client.sadd(self._k("co", d, "deliveries"), delivery_id)
        prefix = self._k("agent", "")
        for key in client.scan_iter(match=prefix + "*", _type="stream", count=_CHUNK):
            extension = str(key).removeprefix(prefix)
            if "@" not in extension:
                client.sadd(self._k("co", d, "agents"), extension)
