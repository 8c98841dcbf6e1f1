"""Memory the call tracker holds after an hour of sustained load, bounded and not.

Feeds ``--calls`` whole calls (ring, answer, hang-up; 33 a second is the soak's 100 events/s,
so 120,000 calls is an hour) through a tracker, one ``tick`` a second as the dispatcher does,
and prints what ``tracemalloc`` says the tracker holds at the end: with the defaults
(``max_finished`` 5,000, ``max_forgotten`` 20,000) and with the count bounds lifted (only the
hour of ``KEEP_RESOLVED`` and the day of tombstones, the old behaviour). Asserts nothing.

    .venv/bin/python bench/tracker_memory.py [--calls N]
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from datetime import UTC, datetime, timedelta

from callbridge.engine.tracker import Tracker
from callbridge.settings import TrackerSettings
from callbridge.voispeed.events import CallEvent, parse_event

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
CALLS_PER_SECOND = 33


def _event(code: int, n: int) -> CallEvent:
    ext = str(201 + n % 20)
    number, other = ("0612345678", ext) if code != 18 else (ext, "0612345678")
    event = parse_event(
        {
            "ssn_event": str(code),
            "call_id": f"{n:08X}",
            "company_id": "1",
            "sender_type": "0",
            "number": number,
            "ext": other,
        }
    )
    assert isinstance(event, CallEvent)
    return event


def held_mb(settings: TrackerSettings, calls: int) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracker = Tracker(settings, region="IT", originates=lambda _: None)
    for n in range(1, calls + 1):
        at = T0 + timedelta(seconds=n / CALLS_PER_SECOND)
        for code in (16, 18, 21):
            tracker.apply(_event(code, n), at)
        if n % CALLS_PER_SECOND == 0:
            tracker.tick(at)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del tracker
    return held / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=120_000)
    args = parser.parse_args()
    bounded = held_mb(TrackerSettings(group_window=0), args.calls)
    unbounded = held_mb(
        TrackerSettings(group_window=0, max_finished=10**9, max_forgotten=10**9), args.calls
    )
    print(
        f"tracker after {args.calls:,} calls at {CALLS_PER_SECOND}/s: "
        f"{bounded:.1f} MB with the default bounds, {unbounded:.1f} MB by age only"
    )


if __name__ == "__main__":
    main()
