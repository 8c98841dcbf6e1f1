"""Calls, click-to-call originates and wrap-ups in the Redis journal."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

import redis
from redis.commands.core import Script

from ...models import Call, Originate, WrapUp
from ..base import (
    DuplicateOriginateError,
    changed_originate,
    check_originate_changes,
    next_wrapup,
)
from ..codec import to_us, utc_now
from ..tenancy import DEFAULT_COMPANY, company_of
from .connection import RedisStore


class RedisCalls(RedisStore):
    """Calls in a hash with sorted-set indexes; originates in a hash with a time index."""

    _save_call: Script

    def save_call(self, call: Call, *, settled: bool = False, company: str | None = None) -> None:
        started = call.ring_at or call.answer_at or call.end_at or utc_now()
        company = company or company_of(call)
        self._save_call(
            keys=[
                self._k("calls"),
                self._k("calls", "by_start"),
                self._k("calls", "open"),
                self._k("calls", "settled"),
                self._k("calls", "company"),
                self._k("companies"),
                self._k("co", company, "calls"),
            ],
            args=[call.key, call.model_dump_json(), to_us(started), int(settled), company],
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

    def create_originate(self, originate: Originate, *, company: str | None = None) -> None:
        external_id = originate.external_id
        created = self._redis.hsetnx(
            self._k("originates"), external_id, originate.model_dump_json()
        )
        if not created:
            raise DuplicateOriginateError(
                f"an originate with external id {external_id!r} already exists"
            )
        # The time index ``recent_originates`` reads, and the company's (a crash before them
        # only hides this one request from correlation, expiry and its company's export;
        # its own ext_id still finds it).
        company = company or company_of(originate)
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(self._k("originates", "by_time"), {external_id: to_us(originate.created_at)})
        pipe.hset(self._k("originates", "company"), external_id, company)
        pipe.sadd(self._k("co", company, "originates"), external_id)
        pipe.sadd(self._k("companies"), company)
        pipe.execute()

    def get_originate(self, external_id: str) -> Originate | None:
        data = self._redis.hget(self._k("originates"), external_id)
        return None if data is None else Originate.model_validate_json(data)

    def update_originate(
        self, external_id: str, *, only_if: Collection[str] | None = None, **changes: Any
    ) -> Originate | None:
        check_originate_changes(changes)
        key = self._k("originates")

        outcome: list[Originate | None] = [None]

        # Optimistic transaction: redis-py re-runs this when another writer touched the hash.
        def change(pipe: redis.client.Pipeline) -> None:
            outcome[0] = None
            data = cast(str | None, pipe.hget(key, external_id))
            if data is None:
                return
            updated, changed = changed_originate(data, only_if, changes)
            if not changed:
                outcome[0] = updated
                return
            pipe.multi()
            pipe.hset(key, external_id, updated.model_dump_json())
            outcome[0] = updated

        self._redis.transaction(change, key)
        return outcome[0]

    def recent_originates(self, since: datetime) -> list[Originate]:
        # A sorted set of external ids by creation time, kept beside the hash.
        ids = cast(
            list[str],
            self._redis.zrangebyscore(self._k("originates", "by_time"), to_us(since), "+inf"),
        )
        if not ids:
            return []
        found = []
        for data in cast(list[str | None], self._redis.hmget(self._k("originates"), ids)):
            if data is not None:
                found.append(Originate.model_validate_json(data))
        found.sort(key=lambda o: o.created_at)
        return found

    def save_wrapup(self, wrapup: WrapUp, *, company: str | None = None) -> WrapUp:
        """One hash field per call; the revision check and write are one optimistic
        transaction (redis-py re-runs it when another save touched the hash)."""
        key = self._k("wrapups")
        outcome: list[WrapUp] = []
        if company is None:
            found = self._redis.hget(self._k("calls", "company"), wrapup.call_key)
            company = str(found) if found else DEFAULT_COMPANY

        def change(pipe: redis.client.Pipeline) -> None:
            outcome.clear()
            stored = cast(str | None, pipe.hget(key, wrapup.call_key))
            kept, changed = next_wrapup(stored, wrapup)
            outcome.append(kept)
            if changed:
                pipe.multi()
                pipe.hset(key, wrapup.call_key, kept.model_dump_json())
                pipe.sadd(self._k("co", company, "wrapups"), wrapup.call_key)
                pipe.sadd(self._k("companies"), company)

        self._redis.transaction(change, key)
        return outcome[0]

    def get_wrapup(self, call_key: str) -> WrapUp | None:
        data = self._redis.hget(self._k("wrapups"), call_key)
        return None if data is None else WrapUp.model_validate_json(data)

    def save_recording(self, call_key: str, reference: str, at: datetime) -> bool:
        """One hash field per call: ``{"reference", "at"}`` (``at`` in microseconds, for
        retention); the compare and write are one optimistic transaction. It is the
        company's of the call."""
        key = self._k("recordings")
        changed: list[bool] = []
        found = self._redis.hget(self._k("calls", "company"), call_key)
        company = str(found) if found else DEFAULT_COMPANY

        def change(pipe: redis.client.Pipeline) -> None:
            changed.clear()
            stored = cast(str | None, pipe.hget(key, call_key))
            held = json.loads(stored).get("reference") if stored else None
            changed.append(held != reference)
            if held != reference:
                pipe.multi()
                pipe.hset(key, call_key, json.dumps({"reference": reference, "at": to_us(at)}))
                pipe.sadd(self._k("co", company, "recordings"), call_key)
                pipe.sadd(self._k("companies"), company)

        self._redis.transaction(change, key)
        return changed[0]

    def get_recording(self, call_key: str) -> str | None:
        data = cast(str | None, self._redis.hget(self._k("recordings"), call_key))
        if data is None:
            return None
        reference = json.loads(data).get("reference")
        return str(reference) if reference is not None else None
