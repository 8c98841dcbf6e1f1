"""Several engines sharing one Redis journal (in one process here; the real processes and a
``kill -9`` are in tests/service/test_engine_workers.py): each call handled by one worker,
in order, exactly one activity per call and plugin, a share for a worker that joins, and
an immediate handover at a clean stop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import engine_helpers as pbx
import pytest
from engine_helpers import Crm, PopRecorder, make_settings
from redis_support import RedisServer

from callbridge.engine.engine import Engine
from callbridge.engine.partitions import event_partition
from callbridge.journal import DeliveryState
from callbridge.journal.redis import RedisJournal
from callbridge.plugins.manager import load_plugins
from callbridge.testing import wait_until
from callbridge.voispeed.events import parse_event


class Worker:
    """One engine with its own journal client, CRM and pop recorder."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.crm, self.pops = Crm("crm"), PopRecorder()
        settings = make_settings(tmp_path)
        plugins = load_plugins(
            settings, entry_points=False, builtins=False, extra=[self.crm, self.pops]
        )
        self.journal = RedisJournal(url)
        self.engine = Engine(
            settings, journal=self.journal, plugins=plugins, tick_interval=0.05, poll_interval=0.01
        )

    def held(self) -> set[int]:
        ownership = self.engine.dispatcher.ownership
        assert ownership is not None
        return set(ownership.active)

    def close(self) -> None:
        self.engine.stop()
        self.journal.close()


@pytest.fixture
def workers(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[Worker]]:
    url = redis_server.unique_url()
    made = [Worker(tmp_path, url) for _ in range(2)]
    yield made
    for worker in made:
        worker.close()


def _call(worker: Worker, n: int) -> None:
    call_id = f"{n:08X}"
    for params in (pbx.incoming(call_id), pbx.answered(call_id), pbx.local_hangup(call_id)):
        worker.engine.ingest(params)


def _logged_once(workers: list[Worker], count: int) -> bool:
    keys = [key for w in workers for key in w.crm.by_call]
    return len(keys) == count


def test_two_workers_share_the_calls_each_logged_exactly_once(workers: list[Worker]) -> None:
    a, b = workers
    a.engine.start()
    assert len(a.held()) == 64  # alone: every partition
    for n in range(1, 41):
        _call(a, n)
    b.engine.start()
    wait_until(lambda: len(a.held()) == len(b.held()) == 32, "a balanced share", timeout=30)
    assert a.held().isdisjoint(b.held())
    for n in range(41, 201):
        _call(a if n % 2 else b, n)
    wait_until(lambda: _logged_once(workers, 200), "every call logged", timeout=60)
    assert a.engine.wait_idle(30) and b.engine.wait_idle(30)

    by_call = {**a.crm.by_call, **b.crm.by_call}
    assert sorted(by_call) == sorted(f"callbridge:1:{n:08X}:crm" for n in range(1, 201))
    assert a.crm.attempts + b.crm.attempts == 200  # no log_call ran twice anywhere
    assert a.crm.attempts > 0 and b.crm.attempts > 0
    # Every call's three pops came from one worker, in order, and only once.
    pops: dict[str, list[str]] = {}
    for worker in workers:
        for pop in worker.pops.pops:
            pops.setdefault(pop.call.key, []).append(pop.call.state.value)
    assert len(pops) == 200
    assert all(states == ["ringing", "answered", "ended"] for states in pops.values())
    deliveries = a.journal.list_deliveries(limit=1000)
    assert len(deliveries) == 200 and all(d.state is DeliveryState.DONE for d in deliveries)


def test_a_clean_stop_hands_every_partition_over_at_once(workers: list[Worker]) -> None:
    a, b = workers
    a.engine.start()
    b.engine.start()
    wait_until(lambda: len(a.held()) == len(b.held()) == 32, "a balanced share", timeout=30)
    a.engine.stop()
    # No lease is left to expire: b's next heartbeats take everything.
    wait_until(lambda: len(b.held()) == 64, "b holds every partition", timeout=4)
    for n in range(1, 31):
        _call(b, n)
    wait_until(lambda: len(b.crm.by_call) == 30, "every call logged by b", timeout=60)
    assert b.crm.attempts == 30


def test_a_group_call_answered_by_one_member_is_one_activity_across_workers(
    workers: list[Worker],
) -> None:
    a, b = workers
    a.engine.start()
    b.engine.start()
    wait_until(lambda: len(a.held()) == len(b.held()) == 32, "a balanced share", timeout=30)
    legs = {"000001A1": "201", "000001A2": "202", "000001A3": "203"}
    group = {"group": "sales"}
    steps = [pbx.incoming(leg, ext=ext, **group) for leg, ext in legs.items()]
    steps.append(pbx.answered("000001A2", ext="202", **group))
    steps += [pbx.remote_hangup(leg, ext=legs[leg], **group) for leg in ("000001A1", "000001A3")]
    steps.append(pbx.local_hangup("000001A2", ext="202", **group))
    for n, params in enumerate(steps):  # through both services, as behind a load balancer
        (a if n % 2 else b).engine.ingest(params)
    wait_until(lambda: a.crm.attempts + b.crm.attempts >= 1, "the activity", timeout=30)
    assert a.engine.wait_idle(30) and b.engine.wait_idle(30)
    logged = [*a.crm.by_call.values(), *b.crm.by_call.values()]
    assert [(r.call.user_call_id, r.call.outcome.value) for r in logged] == [  # type: ignore[union-attr]
        ("000001A2", "answered")
    ]
    assert a.crm.attempts + b.crm.attempts == 1  # the others dropped, not missed calls
    assert a.journal.list_calls(open_only=True) == []


def test_the_legs_of_a_group_call_share_a_partition() -> None:
    legs = [
        parse_event(pbx.incoming(call_id, group="sales", ext="600"))
        for call_id in ("00000001", "00000002", "000000A3")
    ]
    assert len({event_partition(leg, 64) for leg in legs}) == 1
    plain = {event_partition(parse_event(pbx.incoming(f"{n:08X}")), 64) for n in range(200)}
    assert len(plain) > 32  # ordinary calls spread


def test_a_lease_lost_is_dropped_at_once_and_caught_up_when_taken_again(
    workers: list[Worker],
) -> None:
    a = workers[0]
    a.engine.start()
    client = a.journal._client
    call = next(n for n in range(1, 10_000) if _partition_of_call(n) == 5)
    other = next(n for n in range(1, 10_000) if _partition_of_call(n) != 5)
    # Another process holds partition 5 now (as after a stall longer than the lease).
    client.set(f"{a.journal.prefix}:lease:5", "someone-else", px=60_000)
    wait_until(lambda: 5 not in a.held(), "partition 5 given up", timeout=30)
    _call(a, call)
    _call(a, other)  # a call elsewhere is handled meanwhile
    wait_until(lambda: len(a.crm.by_call) == 1, "the other call logged", timeout=30)
    assert f"callbridge:1:{call:08X}:crm" not in a.crm.by_call
    client.delete(f"{a.journal.prefix}:lease:5")
    # Taken again: its events after its cursor are handed on, in order.
    wait_until(lambda: len(a.crm.by_call) == 2, "the call of partition 5 logged", timeout=30)
    states = [p.call.state.value for p in a.pops.pops if p.call.user_call_id == f"{call:08X}"]
    assert states == ["ringing", "answered", "ended"]


def _partition_of_call(n: int) -> int:
    return event_partition(parse_event(pbx.incoming(f"{n:08X}")), 64)
