"""Micro-benchmark of ``SqliteJournal.append_event``: throughput and latency by concurrency.

Each append returns only once durable (WAL + synchronous=FULL), so a lone writer pays one
fsync per event; concurrent writers share fsyncs through the journal's group commit. Prints
appends/s and p50/p99 latency for 1, 8 and 64 threads appending flat out, then for 32 threads
paced at 1,000 and 3,000 appends/s in total (the ingress targets); asserts nothing.

    .venv/bin/python bench/journal_append.py [--events N] [--dir PATH]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from callbridge.journal.base import Journal
from callbridge.journal.sqlite import SqliteJournal
from callbridge.voispeed.events import parse_event


def measure(
    journal: Journal, threads: int, total: int, rate: float | None = None
) -> tuple[float, float, float]:
    """Appends/s, p50 and p99 seconds for ``threads`` appending ``total`` events; closes it."""
    per_thread = max(1, total // threads)
    latencies: list[float] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(threads + 1)

    def worker(t: int) -> None:
        mine: list[float] = []
        interval = threads / rate if rate else 0.0
        start_gate.wait()
        next_at = time.perf_counter() + (t / threads) * interval
        for i in range(per_thread):
            if interval:
                pause = next_at - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                next_at += interval
            params = {
                "ssn_event": "16",
                "call_id": f"{t:04X}{i:04X}",
                "number": "0612345678",
                "ext": "201",
                "company_id": "1",
                "identity": "Mario|Rossi|Sales|0|0",
            }
            event = parse_event(params)
            began = time.perf_counter()
            journal.append_event(event, raw=params)
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    journal.close()
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, p50, p99


def report(open_journal: Callable[[str], Journal], events: int) -> None:
    """Print the table: 1/8/64 threads flat out, then 32 threads paced at 1,000 and 3,000/s.

    ``open_journal(name)`` gives a fresh journal for each run.
    """
    print(f"{'threads':>7}  {'appends/s':>10}  {'p50 ms':>8}  {'p99 ms':>8}")
    for threads in (1, 8, 64):
        total = events if threads > 1 else max(200, events // 8)
        rate, p50, p99 = measure(open_journal(f"bench-{threads}"), threads, total)
        print(f"{threads:>7}  {rate:>10.0f}  {p50 * 1000:>8.2f}  {p99 * 1000:>8.2f}")
    for target in (1000, 3000):
        rate, p50, p99 = measure(open_journal(f"paced-{target}"), 32, target * 3, target)
        print(
            f"paced at {target}/s (32 threads): {rate:.0f}/s, "
            f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="appends per run")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the journal files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        report(lambda name: SqliteJournal(Path(tmp) / f"{name}.sqlite3"), args.events)


if __name__ == "__main__":
    main()
