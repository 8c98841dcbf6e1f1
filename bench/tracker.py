"""Micro-benchmark of the call tracker: events applied per second.

Builds 100k call events (parsed beforehand, so only the tracker is measured): a realistic mix
of inbound answered, inbound missed, outbound calls and ring-group calls, a few repeats, with
a ``tick`` every 1000 events as the dispatcher would do. Prints events/s for one thread and
for 8 threads sharing the tracker; asserts nothing.

    .venv/bin/python bench/tracker.py [--events N]
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from datetime import UTC, datetime, timedelta

from callbridge.engine.tracker import Tracker
from callbridge.settings import TrackerSettings
from callbridge.voispeed.events import CallEvent, parse_event

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)


def _event(code: int, call_id: int, number: str, ext: str, group: str | None) -> CallEvent:
    params = {
        "ssn_event": str(code),
        "call_id": f"{call_id:08X}",
        "number": number,
        "ext": ext,
        "sender_id": "7",
        "sender_type": "0",
        "company_id": "1",
        "identity": "Mario|Rossi|Sales|0|0",
    }
    if group:
        params["group"] = group
    event = parse_event(params)
    assert isinstance(event, CallEvent)
    return event


def _workload(total: int, seed: int = 7) -> list[list[CallEvent]]:
    """Events grouped by call (each list in order), about ``total`` events in all."""
    rng = random.Random(seed)
    calls: list[list[CallEvent]] = []
    count, next_id = 0, 1
    while count < total:
        caller = f"06{rng.randrange(10**8):08d}"
        ext = f"{rng.randrange(200, 260)}"
        shape = rng.random()
        if shape < 0.15:  # a ring group of 3: one answers
            ids = range(next_id, next_id + 3)
            for n, cid in enumerate(ids):
                member = f"{300 + n}"
                legs = [_event(16, cid, caller, member, "sales")]
                if n == 0:
                    legs += [_event(18, cid, member, caller, "sales")]
                legs += [_event(21 if n == 0 else 20, cid, caller, member, "sales")]
                calls.append(legs)
                count += len(legs)
            next_id += 3
            continue
        if shape < 0.55:
            legs = [_event(16, next_id, caller, ext, None), _event(18, next_id, ext, caller, None)]
            legs += [_event(21, next_id, caller, ext, None)]
        elif shape < 0.75:
            legs = [_event(16, next_id, caller, ext, None), _event(20, next_id, caller, ext, None)]
        else:
            legs = [_event(17, next_id, caller, ext, None), _event(18, next_id, caller, ext, None)]
            legs += [_event(20, next_id, caller, ext, None)]
        if rng.random() < 0.05:
            legs.insert(1, legs[0])  # the PBX's trigger fired twice
        calls.append(legs)
        count += len(legs)
        next_id += 1
    return calls


def _interleave(calls: list[list[CallEvent]], width: int = 50) -> list[CallEvent]:
    """Events of ``width`` calls at a time interleaved, each call's own order kept."""
    out: list[CallEvent] = []
    for start in range(0, len(calls), width):
        batch = [list(c) for c in calls[start : start + width]]
        while any(batch):
            for legs in batch:
                if legs:
                    out.append(legs.pop(0))
    return out


def _tracker() -> Tracker:
    return Tracker(TrackerSettings(), region="IT", originates=lambda _: None)


def bench_single(events: list[CallEvent]) -> tuple[float, int]:
    tracker = _tracker()
    finished = 0
    start = time.perf_counter()
    for i, event in enumerate(events):
        now = T0 + timedelta(milliseconds=10 * i)
        finished += sum(c.kind == "finished" for c in tracker.apply(event, now))
        if i % 1000 == 0:
            finished += sum(c.kind == "finished" for c in tracker.tick(now))
    finished += sum(c.kind == "finished" for c in tracker.tick(now + timedelta(minutes=1)))
    return len(events) / (time.perf_counter() - start), finished


def bench_threads(calls: list[list[CallEvent]], threads: int) -> float:
    tracker = _tracker()
    shards = [_interleave(calls[t::threads]) for t in range(threads)]
    gate = threading.Barrier(threads + 1)

    def worker(events: list[CallEvent]) -> None:
        gate.wait()
        for i, event in enumerate(events):
            tracker.apply(event, T0 + timedelta(milliseconds=10 * i))

    pool = [threading.Thread(target=worker, args=(s,)) for s in shards]
    for thread in pool:
        thread.start()
    gate.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    return sum(len(s) for s in shards) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    calls = _workload(args.events)
    events = _interleave(calls)
    rate, finished = bench_single(events)
    print(f"tracker: {len(events)} events, {len(calls)} user calls, {finished} finished")
    print(f"  1 thread : {rate:>10,.0f} events/s")
    print(f"  8 threads: {bench_threads(calls, 8):>10,.0f} events/s (one lock, GIL-bound)")


if __name__ == "__main__":
    main()
