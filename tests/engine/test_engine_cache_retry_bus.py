"""The lookup cache, the retry policy and the agent bus on their own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from callbridge.engine.bus import AgentBus
from callbridge.engine.cache import MISSING, TTLCache
from callbridge.engine.retry import RetryPolicy
from callbridge.journal import AgentEvent
from callbridge.settings import DispatchSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_ttl_negative_entries_and_size() -> None:
    clock = Clock()
    cache: TTLCache[str, str | None] = TTLCache(2, clock=clock)
    assert cache.get("a") is MISSING
    cache.set("a", "A", ttl=10)
    cache.set("none", None, ttl=2)
    assert cache.get("a") == "A"
    assert cache.get("none") is None  # a cached "not found" is not a miss
    clock.now += 3
    assert cache.get("none") is MISSING
    assert cache.get("a") == "A"
    cache.set("b", "B", ttl=10)
    cache.set("c", "C", ttl=10)  # evicts the least recently used
    assert len(cache) == 2
    assert cache.get("a") is MISSING
    cache.set("z", "Z", ttl=0)
    assert cache.get("z") is MISSING
    clock.now += 11
    assert cache.get("b") is MISSING


def test_retry_delays_stay_within_bounds_and_honour_the_hint() -> None:
    policy = RetryPolicy.from_settings(
        DispatchSettings(backoff_initial=2, backoff_max=60, max_attempts=5, max_age=3600)
    )
    for attempt in range(1, 30):
        delay = policy.delay(attempt)
        assert 2 <= delay <= 60
    assert all(policy.delay(1) <= 2 for _ in range(20))  # first retry: the floor
    assert policy.delay(1, hint=120) == 120
    now = datetime(2024, 1, 1, tzinfo=UTC)
    due = policy.next_attempt(attempts_done=1, since=now, now=now)
    assert due is not None
    assert now + timedelta(seconds=2) <= due <= now + timedelta(seconds=60)
    assert policy.next_attempt(attempts_done=5, since=now, now=now) is None
    old = now - timedelta(seconds=3599)
    assert policy.next_attempt(attempts_done=1, since=old, now=now) is None


def _event(i: int, ext: str = "201") -> AgentEvent:
    return AgentEvent(id=i, extension=ext, at=datetime.now(UTC), kind="pop", data={})


def test_bus_per_extension_catch_all_detach_and_failing_subscriber() -> None:
    bus = AgentBus()
    mine: list[int] = []
    everything: list[int] = []

    def broken(event: AgentEvent) -> None:
        raise RuntimeError("subscriber bug")

    detach = bus.subscribe("201", lambda e: mine.append(e.id))
    bus.subscribe("201", broken)
    bus.subscribe(None, lambda e: everything.append(e.id))
    bus.publish(_event(1))
    bus.publish(_event(2, "202"))
    detach()
    detach()
    bus.publish(_event(3))
    assert mine == [1]
    assert everything == [1, 2, 3]
    assert bus.subscriber_count() == 2


def test_bus_feeds_an_asyncio_queue_from_another_thread() -> None:
    bus = AgentBus()

    async def main() -> list[int]:
        queue: asyncio.Queue[AgentEvent] = asyncio.Queue()
        detach = bus.subscribe_queue("201", asyncio.get_running_loop(), queue)
        await asyncio.to_thread(bus.publish, _event(7))
        await asyncio.to_thread(bus.publish, _event(8, "999"))
        got = [(await asyncio.wait_for(queue.get(), 10)).id]
        detach()
        return got

    assert asyncio.run(main()) == [7]
