"""``RedisWorkShare``: engine workers sharing one Redis journal (see ``journal/sharing.py``).

Which Redis primitive does what (``docs/scaling.md``, "Engine workers"):

- ``<prefix>:workers``, a sorted set of worker id -> expiry (server time, ms): a worker is
  live while its last heartbeat is younger than the lease time; the fair share of each is
  the partitions divided by the live workers, rounded up.
- ``<prefix>:lease:<n>``, a string holding the owner's id with a ``PX`` expiry: the lease on
  partition ``n``. Taken only when absent (``SET`` inside the heartbeat script, which reads
  it first: the script is atomic), renewed by the owner's heartbeat, dropped on release;
  when the owner dies it expires and the next heartbeat of another worker takes it.
- ``<prefix>:cursors`` fields ``dispatcher:p<n>``: where each partition's handled prefix of
  events ends. Saved only while the lease is held (a worker that lost its lease cannot move
  a cursor back or forth under the new owner).
- ``<prefix>:deliveries:lease:<id>``: a claim on one delivery while ``log_call`` runs, with
  the same expiry; a delivery in flight on a dead worker is due again once it expires.
"""

from __future__ import annotations

import os
import socket
import uuid
import zlib
from collections.abc import Collection, Mapping
from typing import cast

import redis

from ..codec import to_us, utc_now
from ..sharing import DEFAULT_PARTITIONS, LEASE_TTL, Beat, partition_cursor
from . import sharing_lua as lua


def new_worker_id() -> str:
    """``host:pid:random``: unique per start, readable in ``redis-cli``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RedisWorkShare:
    """One worker's partition leases, cursors and delivery claims in a Redis journal."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        worker: str | None = None,
        ttl: float = LEASE_TTL,
        partitions: int = DEFAULT_PARTITIONS,
    ) -> None:
        self._client = client
        self.prefix = prefix
        self.worker = worker or new_worker_id()
        self._ttl_ms = max(1, int(ttl * 1000))
        # The first worker fixes the count; later ones follow it whatever they were given.
        key = f"{prefix}:workers:partitions"
        client.set(key, int(partitions), nx=True)
        self.partitions = int(cast(str, client.get(key)))
        #: Where this worker starts taking free partitions, so that workers spread.
        self._offset = zlib.crc32(self.worker.encode()) % self.partitions
        register = client.register_script
        self._beat = register(lua.BEAT_LUA)
        self._save = register(lua.SAVE_CURSORS_LUA)
        self._release = register(lua.RELEASE_LUA)
        self._claim = register(lua.CLAIM_DELIVERY_LUA)
        self._drop = register(lua.DROP_LEASE_LUA)

    def __repr__(self) -> str:
        return f"RedisWorkShare(worker={self.worker!r}, partitions={self.partitions})"

    def beat(self, claims: Collection[int] = ()) -> Beat:
        args: list[str | int] = [self.prefix, self.worker, self._ttl_ms, self.partitions]
        args.append(self._offset)
        reply = cast(list[int], self._beat(args=[*args, *claims], client=self._client))
        fair, live, *owned = (int(x) for x in reply)
        return Beat(owned=frozenset(owned), fair=fair, live=live)

    def release(self, partition: int, cursor: int) -> bool:
        args: list[str | int] = [self.prefix, self.worker, int(partition), int(cursor)]
        return bool(self._release(args=args, client=self._client))

    def cursors(self, partitions: Collection[int]) -> dict[int, int]:
        wanted = sorted(partitions)
        if not wanted:
            return {}
        names = [partition_cursor(p) for p in wanted]
        values = cast(
            list[str | None],
            self._client.hmget(f"{self.prefix}:cursors", [*names, "dispatcher"]),
        )
        single = int(values[-1] or 0)
        return {
            p: single if v is None else int(v) for p, v in zip(wanted, values[:-1], strict=True)
        }

    def save_cursors(self, cursors: Mapping[int, int]) -> int:
        if not cursors:
            return 0
        args: list[str | int] = [self.prefix, self.worker, self.partitions]
        for partition, seq in sorted(cursors.items()):
            args += [int(partition), int(seq)]
        return int(self._save(args=args, client=self._client))

    def claim_delivery(self, delivery_id: int, attempts: int) -> bool:
        args: list[str | int] = [self.prefix, self.worker, int(delivery_id), int(attempts)]
        args += [to_us(utc_now()), self._ttl_ms]
        return bool(self._claim(args=args, client=self._client))

    def release_delivery(self, delivery_id: int) -> None:
        key = f"{self.prefix}:deliveries:lease:{int(delivery_id)}"
        self._drop(keys=[key], args=[self.worker], client=self._client)

    def leave(self) -> None:
        self._client.zrem(f"{self.prefix}:workers", self.worker)
