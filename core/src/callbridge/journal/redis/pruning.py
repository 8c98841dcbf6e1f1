"""Retention for the Redis journal: streams from their oldest entry, then calls,
deliveries and originates, in chunks."""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import cast

from ...models import Originate, WrapUp
from ..base import DeliveryState, events_floor
from ..codec import to_us
from .connection import RedisStore
from .events import Entries
from .scripts import PRUNE_DELIVERIES_LUA, PRUNE_STREAM_LUA


def _prune_int(value: object, default: int = 0) -> int:
    """A stored time as an int; a damaged one counts as ``default`` (old: prunable)."""
    try:
        return int(str(value))
    except ValueError:
        return default


class RedisPruning(RedisStore):
    """``prune`` for every kind of key."""

    #: Entries read, checked and deleted per round trip by ``prune``.
    _PRUNE_CHUNK = 1000

    def prune(self, older_than: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """See ``Journal.prune``. Streams are walked from their oldest entry and stop at the
        first one to keep, so entries are deleted oldest first and never past a cursor."""
        cutoff = to_us(older_than)
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
        if not dry_run:
            self._trim_company_index("events")
            self._trim_company_index("rejected")
        agent_seq = self._k("agent", "seq")
        for key in self._redis.scan_iter(match=self._k("agent", "*"), _type="stream"):
            if key != agent_seq:
                counts["agent_events"] += self._prune_stream(key, agent_kept, dry_run)
        counts["calls"] = self._prune_calls(cutoff, dry_run)
        counts["deliveries"] = self._prune_deliveries(cutoff, dry_run)
        counts["originates"] = self._prune_originates(cutoff, dry_run)
        counts["wrapups"] = self._prune_per_call("wrapups", _wrapup_at, cutoff, dry_run)
        counts["recordings"] = self._prune_per_call("recordings", _recording_at, cutoff, dry_run)
        return counts

    def _trim_company_index(self, kind: str) -> None:
        """Drop from every company's index of ``kind`` the ids below the stream's oldest
        entry: they were pruned (or trimmed), and an index must not grow without end."""
        first = cast(Entries, self._redis.xrange(self._k(kind), count=1))
        if first:
            below = int(first[0][0].partition("-")[0])
        else:
            below = int(self._redis.get(self._k(kind, "seq")) or 0) + 1
        pipe = self._redis.pipeline(transaction=False)
        for company in cast(set[str], self._redis.smembers(self._k("companies"))):
            pipe.zremrangebyscore(self._k("co", company, kind), "-inf", f"({below}")
        pipe.execute()

    def _forget_companies(self, kind: str, ids: list[str]) -> typing.Any:
        """A transaction that drops ``ids`` (calls or originates) from their companies' sets
        and from ``<kind>:company``; the caller adds its own deletions and executes it."""
        owners = cast(list[str | None], self._redis.hmget(self._k(kind, "company"), ids))
        pipe = self._redis.pipeline(transaction=True)
        for item, owner in zip(ids, owners, strict=True):
            pipe.srem(self._k("co", owner or "default", kind), item)
        pipe.hdel(self._k(kind, "company"), *ids)
        return pipe

    def _prune_stream(
        self,
        key: str,
        kept: typing.Callable[[int, Mapping[str, str]], bool],
        dry_run: bool,
        *,
        dedup: bool = False,
    ) -> int:
        """Delete a stream's entries from the oldest up to the first one ``kept`` keeps."""
        script = self._client.register_script(PRUNE_STREAM_LUA)
        total = 0
        start = "-"
        while True:
            entries = cast(
                Entries, self._redis.xrange(key, min=start, max="+", count=self._PRUNE_CHUNK)
            )
            doomed: Entries = []
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
                pipe = self._forget_companies("calls", doomed)
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
        script = self._client.register_script(PRUNE_DELIVERIES_LUA)
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
                created = to_us(Originate.model_validate_json(data).created_at)
            except ValueError:
                continue  # unreadable: left for a person to look at
            if created < cutoff:
                doomed.append(external_id)
        if not dry_run:
            for i in range(0, len(doomed), self._PRUNE_CHUNK):
                chunk = doomed[i : i + self._PRUNE_CHUNK]
                pipe = self._forget_companies("originates", chunk)
                pipe.hdel(key, *chunk)
                pipe.zrem(self._k("originates", "by_time"), *chunk)
                pipe.execute()
        return len(doomed)

    def _prune_per_call(
        self, name: str, saved_at: typing.Callable[[str], int], cutoff: int, dry_run: bool
    ) -> int:
        """Fields of a per-call hash (wrap-ups, recordings) saved before the cutoff whose
        call has no pending delivery (an update, or a log_call waiting, still reads them)."""
        key = self._k(name)
        old: list[str] = []
        for call_key, data in self._redis.hscan_iter(key, count=self._PRUNE_CHUNK):
            try:
                saved = saved_at(data)
            except (ValueError, TypeError, AttributeError):
                continue  # unreadable: left for a person to look at
            if saved < cutoff:
                old.append(call_key)
        doomed: list[str] = []
        for i in range(0, len(old), self._PRUNE_CHUNK):
            chunk = old[i : i + self._PRUNE_CHUNK]
            pipe = self._redis.pipeline(transaction=False)
            for call_key in chunk:
                pipe.smembers(self._k("deliveries", "call", call_key))
            delivery_ids = [sorted(ids) for ids in pipe.execute()]
            pipe = self._redis.pipeline(transaction=False)
            for ids in delivery_ids:
                for delivery_id in ids:
                    pipe.hget(self._k("delivery", delivery_id), "state")
            states = iter(pipe.execute())
            for call_key, ids in zip(chunk, delivery_ids, strict=True):
                own = [next(states) for _ in ids]  # every reply consumed, in order
                if "pending" not in own:
                    doomed.append(call_key)
        if not dry_run:
            # Their calls (and the call -> company map) may be gone already: every company's
            # index forgets them (a company's index holds only its own calls' keys).
            companies = cast(set[str], self._redis.smembers(self._k("companies")))
            for i in range(0, len(doomed), self._PRUNE_CHUNK):
                chunk = doomed[i : i + self._PRUNE_CHUNK]
                pipe = self._redis.pipeline(transaction=True)
                pipe.hdel(key, *chunk)
                for company in companies:
                    pipe.srem(self._k("co", company, name), *chunk)
                pipe.execute()
        return len(doomed)


def _wrapup_at(data: str) -> int:
    return to_us(WrapUp.model_validate_json(data).saved_at)


def _recording_at(data: str) -> int:
    return int(json.loads(data)["at"])
