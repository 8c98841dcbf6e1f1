"""Micro-benchmark of ``RedisJournal.append_event``: throughput and latency by concurrency.

Starts its own redis-server (a free port on 127.0.0.1, a temporary directory, no snapshots,
``appendonly yes`` + ``appendfsync always``: every acknowledged append is fsynced, like the
SQLite journal's ``synchronous=FULL``), then prints appends/s and p50/p99 latency for 1, 8 and
64 threads appending flat out, and for 32 threads paced at 1,000 and 3,000 appends/s in total.
Each run uses its own key prefix. Asserts nothing.

    .venv/bin/python bench/journal_append_redis.py [--events N] [--dir PATH] [--fsync POLICY]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis

from callbridge.journal.redis import RedisJournal
from callbridge.voispeed.events import parse_event


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_server(directory: Path, fsync: str) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = _free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            fsync,
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with redis.Redis(host="127.0.0.1", port=port) as probe:
                probe.ping()
            return process, port
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit("redis-server did not start") from None
            time.sleep(0.05)


def _run(
    url: str, threads: int, total: int, rate: float | None = None
) -> tuple[float, float, float]:
    journal = RedisJournal(url)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="appends per run")
    parser.add_argument("--dir", type=Path, default=None, help="where redis-server keeps its AOF")
    parser.add_argument(
        "--fsync", default="always", choices=("always", "everysec", "no"), help="appendfsync"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        process, port = _start_server(Path(tmp), args.fsync)
        base = f"redis://127.0.0.1:{port}/0?prefix="
        try:
            print(f"redis-server, appendonly yes, appendfsync {args.fsync}")
            print(f"{'threads':>7}  {'appends/s':>10}  {'p50 ms':>8}  {'p99 ms':>8}")
            for threads in (1, 8, 64):
                total = args.events if threads > 1 else max(200, args.events // 8)
                rate, p50, p99 = _run(f"{base}bench{threads}", threads, total)
                print(f"{threads:>7}  {rate:>10.0f}  {p50 * 1000:>8.2f}  {p99 * 1000:>8.2f}")
            for target in (1000, 3000):
                rate, p50, p99 = _run(f"{base}paced{target}", 32, target * 3, target)
                print(
                    f"paced at {target}/s (32 threads): {rate:.0f}/s, "
                    f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"
                )
        finally:
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    main()
