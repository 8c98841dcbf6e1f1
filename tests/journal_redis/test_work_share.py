"""The primitives engine workers share a Redis journal with: partition leases with expiry,
fair shares from live heartbeats, fenced cursors and delivery claims (real redis-server)."""

from __future__ import annotations

import redis

from callbridge.journal.base import Delivery, DeliveryState
from callbridge.journal.redis import RedisJournal
from callbridge.journal.redis.sharing import RedisWorkShare
from callbridge.testing import wait_until


def _share(journal: RedisJournal, name: str, ttl: float = 5.0) -> RedisWorkShare:
    return RedisWorkShare(journal._client, journal.prefix, worker=name, ttl=ttl)


def _claimed(
    journal: RedisJournal, call: str, ttl: float
) -> tuple[RedisWorkShare, RedisWorkShare, Delivery]:
    """Two workers and a new delivery that the first has just claimed."""
    a, b = _share(journal, "a", ttl=ttl), _share(journal, "b", ttl=ttl)
    d = journal.enqueue_delivery(call_key=call, plugin="p", action="log_call", payload={})
    assert a.claim_delivery(d.id, d.attempts)
    return a, b, d


def test_one_worker_takes_every_partition_and_keeps_them(redis_journal: RedisJournal) -> None:
    a = _share(redis_journal, "a")
    first = a.beat()
    assert first.owned == frozenset(range(a.partitions))
    assert (first.fair, first.live) == (a.partitions, 1)
    assert a.beat().owned == first.owned


def test_a_second_worker_gets_what_the_first_releases_never_more_than_fair(
    redis_journal: RedisJournal,
) -> None:
    a, b = _share(redis_journal, "a"), _share(redis_journal, "b")
    a.beat()
    joined = b.beat()
    assert joined.owned == frozenset() and joined.live == 2 and joined.fair == a.partitions // 2
    seen = a.beat()
    surplus = sorted(seen.owned)[seen.fair :]
    for partition in surplus:
        assert a.release(partition, 0)
    assert b.beat().owned == frozenset(surplus)
    assert a.beat().owned.isdisjoint(b.beat().owned)
    assert not b.release(sorted(a.beat().owned)[0], 0)  # not b's: nothing happens


def test_a_dead_worker_s_partitions_are_taken_once_its_leases_expire(
    redis_journal: RedisJournal,
) -> None:
    dead = _share(redis_journal, "dead", ttl=0.4)
    alive = _share(redis_journal, "alive", ttl=0.4)
    dead.beat()
    assert alive.beat().owned == frozenset()
    # "dead" beats no more; "alive" goes on beating and takes everything after the expiry.
    wait_until(lambda: len(alive.beat().owned) == alive.partitions, "the takeover", timeout=10)
    assert alive.beat().live == 1


def test_cursors_are_saved_only_by_the_lease_holder(redis_journal: RedisJournal) -> None:
    redis_journal.set_cursor("dispatcher", 7)  # a journal one engine read before
    a = _share(redis_journal, "a")
    assert a.cursors([0, 5]) == {0: 7, 5: 7}
    owned = a.beat().owned
    assert a.save_cursors({p: 10 + p for p in owned}) == len(owned)
    assert a.cursors([0, 5]) == {0: 10, 5: 15}
    assert redis_journal.get_cursor("dispatcher") == 10  # the lowest of all partitions
    assert a.release(3, 20)
    b = _share(redis_journal, "b")
    assert b.save_cursors({0: 99}) == 0  # a's partition
    assert b.cursors([0, 3]) == {0: 10, 3: 20}


def test_a_delivery_is_claimed_by_one_worker_and_only_while_still_due(
    redis_journal: RedisJournal,
) -> None:
    a, b, d = _claimed(redis_journal, "c:1", 0.5)
    assert not b.claim_delivery(d.id, d.attempts)
    # a dies holding it: once the claim expires, b may run it (the same idempotency key).
    wait_until(lambda: b.claim_delivery(d.id, d.attempts), "the claim to expire", timeout=10)
    redis_journal.complete_delivery(d.id, None)
    b.release_delivery(d.id)
    assert redis_journal.get_delivery(d.id).state is DeliveryState.DONE  # type: ignore[union-attr]
    assert not a.claim_delivery(d.id, d.attempts)  # done: an old snapshot claims nothing


def test_a_claim_refuses_a_stale_snapshot_and_is_renewed_by_the_beat(
    redis_journal: RedisJournal,
) -> None:
    a, b, d = _claimed(redis_journal, "c:2", 0.6)
    a.release_delivery(d.id)
    redis_journal.fail_delivery(d.id, error="x", next_attempt_at=None)
    redis_journal.retry_delivery(d.id)  # pending again, attempts back to 0 but retried
    fresh = redis_journal.get_delivery(d.id)
    assert fresh is not None
    assert a.claim_delivery(fresh.id, fresh.attempts)
    assert not b.claim_delivery(fresh.id, fresh.attempts + 1)  # not what b read
    client: redis.Redis = redis_journal._client
    key = f"{redis_journal.prefix}:deliveries:lease:{d.id}"
    for _ in range(3):
        a.beat(claims=[d.id])
        assert client.pttl(key) > 300  # renewed, never left to expire while it runs
    a.leave()
    assert b.beat().live == 1
