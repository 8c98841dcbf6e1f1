"""What engine workers sharing one journal need from it: partition leases, cursors, claims.

A journal that several ``callbridge engine`` processes can share (the Redis one) hands each
worker a ``WorkShare`` (``Journal.work_share``). The events are split into a fixed number of
partitions by the call they belong to (``engine/partitions.py``); a worker handles the events
of the partitions it holds a lease on, from each partition's own cursor. Everything that
needs coordinating is a lease with an expiry kept by the journal's server, so a worker that
dies (``kill -9``) simply stops renewing and its share becomes free again: there is no
membership protocol of our own. See ``docs/scaling.md`` ("Engine workers").

The SQLite journal has no ``WorkShare``: one engine per file, as before.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

#: Partitions of a shared journal (fixed when a journal is first shared; stored with it).
DEFAULT_PARTITIONS = 64
#: Seconds a partition lease, a worker's heartbeat and a delivery claim last unless renewed.
LEASE_TTL = 5.0
#: Seconds between two heartbeats (each renews every lease the worker holds).
BEAT_INTERVAL = 1.0


def partition_cursor(partition: int) -> str:
    """The cursor name of one partition: events up to it are handled for that partition."""
    return f"dispatcher:p{partition}"


@dataclass(frozen=True, slots=True)
class Beat:
    """What one heartbeat found: the partitions this worker holds (renewed or just taken),
    the share it may hold (``fair``: partitions / live workers, rounded up) and how many
    workers are live."""

    owned: frozenset[int]
    fair: int
    live: int


class WorkShare(Protocol):
    """One worker's handle on a shared journal. Every method is one atomic server step."""

    #: This worker's id (host, process and a random part: never reused by a restart).
    worker: str
    #: The journal's number of partitions.
    partitions: int

    def beat(self, claims: Collection[int] = ()) -> Beat:
        """Heartbeat: renew this worker's partition leases and the delivery ``claims`` it
        holds, and take free partitions up to its fair share."""

    def release(self, partition: int, cursor: int) -> bool:
        """Save the partition's cursor and give its lease up (only while holding it)."""

    def cursors(self, partitions: Collection[int]) -> dict[int, int]:
        """Each partition's cursor (a journal read by one engine before: its cursor)."""

    def save_cursors(self, cursors: Mapping[int, int]) -> int:
        """Save cursors of partitions this worker still holds; return how many were saved."""

    def claim_delivery(self, delivery_id: int, attempts: int) -> bool:
        """Claim a due delivery seen with ``attempts``: False when another worker holds it,
        or it changed since it was read (done, failed, rescheduled)."""

    def release_delivery(self, delivery_id: int) -> None:
        """Give a delivery claim up (its outcome is recorded, or it was not run)."""

    def leave(self) -> None:
        """A clean stop: no longer counted among the live workers."""
