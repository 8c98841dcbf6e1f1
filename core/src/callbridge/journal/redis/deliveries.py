"""Deliveries and their retry state in the Redis journal: one hash each, plus indexes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from redis.commands.core import Script

from ..base import Delivery, DeliveryState
from ..codec import dumps, from_us, opt_from_us, to_us, utc_now
from .connection import RedisStore

#: Separator inside composite hash fields (plugin names and call keys never contain it).
_SEP = "\x1f"


def _delivery(fields: Mapping[str, str]) -> Delivery:
    result = fields.get("result")
    return Delivery(
        id=int(fields["id"]),
        call_key=fields["call_key"],
        plugin=fields["plugin"],
        action=fields["action"],
        state=DeliveryState(fields["state"]),
        attempts=int(fields["attempts"]),
        created_at=from_us(fields["created_at"]),
        next_attempt_at=opt_from_us(fields.get("next_at")),
        last_error=fields.get("last_error"),
        payload=json.loads(fields["payload"]),
        result=None if result is None else json.loads(result),
        retried_at=opt_from_us(fields.get("retried_at")),
    )


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    """A Lua ``HGETALL`` reply (a flat list) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


class RedisDeliveries(RedisStore):
    """Every delivery transition is one Lua script (``scripts.py``), indexes included."""

    _enqueue: Script
    _complete: Script
    _fail: Script
    _retry: Script
    _reschedule: Script

    def _fetch_deliveries(self, ids: Sequence[str | int]) -> list[Delivery]:
        if not ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for delivery_id in ids:
            pipe.hgetall(self._k("delivery", str(int(delivery_id))))
        return [_delivery(fields) for fields in pipe.execute() if fields]

    def enqueue_delivery(
        self,
        *,
        call_key: str,
        plugin: str,
        action: str,
        payload: dict[str, Any],
        company: str | None = None,
    ) -> Delivery:
        for name, value in (("call_key", call_key), ("plugin", plugin), ("action", action)):
            if _SEP in value:
                raise ValueError(f"{name} must not contain the character U+001F")
        flat = self._enqueue(
            args=[
                self.prefix,
                call_key,
                plugin,
                action,
                to_us(utc_now()),
                dumps(payload),
                company or "",
            ],
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
            list[str], self._redis.zrangebyscore(index, "-inf", to_us(now), start=0, num=limit)
        )
        # A delivery completed between the two reads is left out, as a snapshot would.
        return [d for d in self._fetch_deliveries(members) if d.state is DeliveryState.PENDING]

    def complete_delivery(self, delivery_id: int, result: dict[str, Any] | None) -> None:
        body = "" if result is None else dumps(result)
        self._complete(args=[self.prefix, int(delivery_id), body], client=self._redis)

    def fail_delivery(
        self, delivery_id: int, *, error: str, next_attempt_at: datetime | None
    ) -> None:
        due = "" if next_attempt_at is None else to_us(next_attempt_at)
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

    def reschedule_delivery(self, delivery_id: int, at: datetime) -> bool:
        done = self._reschedule(args=[self.prefix, int(delivery_id), to_us(at)], client=self._redis)
        return bool(done)

    def retry_delivery(self, delivery_id: int) -> bool:
        done = self._retry(
            args=[self.prefix, int(delivery_id), to_us(utc_now())], client=self._redis
        )
        return bool(done)
