"""Micro-benchmark of ``RedisJournal.append_event``: throughput and latency by concurrency.

Starts its own redis-server (a free port on 127.0.0.1, a temporary directory, no snapshots,
``appendonly yes`` + ``appendfsync always``: every acknowledged append is fsynced, like the
SQLite journal's ``synchronous=FULL``), then prints appends/s and p50/p99 latency for 1, 8 and
64 threads appending flat out, and for 32 threads paced at 1,000 and 3,000 appends/s in total.
Each run uses its own key prefix. Asserts nothing.

With ``--replica`` it also starts a replica of that server (same persistence) and runs the
same series three times: without ``WAIT``, with ``wait_replicas=1`` in the journal URL (each
pipeline of appends is acked only once the replica has it; see docs/scaling.md), and
without again (the first series also pays for warm-up and the replica's initial sync).

    .venv/bin/python bench/journal_append_redis.py [--events N] [--dir PATH] [--fsync POLICY]
        [--replica]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from journal_append import report

from callbridge.journal.redis import RedisJournal


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_server(
    directory: Path, fsync: str, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], int]:
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
            *extra,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="appends per run")
    parser.add_argument("--dir", type=Path, default=None, help="where redis-server keeps its AOF")
    parser.add_argument(
        "--fsync", default="always", choices=("always", "everysec", "no"), help="appendfsync"
    )
    parser.add_argument(
        "--replica", action="store_true", help="also with a replica, without and with WAIT"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        (Path(tmp) / "master").mkdir()
        process, port = _start_server(Path(tmp) / "master", args.fsync)
        processes = [process]
        base = f"redis://127.0.0.1:{port}/0?prefix="
        try:
            if args.replica:
                (Path(tmp) / "replica").mkdir()
                replica, _ = _start_server(
                    Path(tmp) / "replica", args.fsync, ("--replicaof", "127.0.0.1", str(port))
                )
                processes.append(replica)
                _wait_for_replica(port)
            print(f"redis-server, appendonly yes, appendfsync {args.fsync}")
            if args.replica:
                print("with a replica, no WAIT")
            report(lambda name: RedisJournal(f"{base}{name}"), args.events)
            if args.replica:
                print("with a replica, wait_replicas=1")
                report(lambda name: RedisJournal(f"{base}{name}&wait_replicas=1"), args.events)
                # Again without: the first series also paid the replica's initial sync and
                # the warm-up, which would flatter WAIT.
                print("with a replica, no WAIT (again)")
                report(lambda name: RedisJournal(f"{base}{name}"), args.events)
        finally:
            for running in processes:
                running.terminate()
                running.wait(30)


def _wait_for_replica(port: int) -> None:
    deadline = time.monotonic() + 60
    with redis.Redis(host="127.0.0.1", port=port, decode_responses=True) as master:
        while int(master.info("replication").get("connected_slaves", 0)) < 1:
            if time.monotonic() > deadline:
                raise SystemExit("the replica did not connect")
            time.sleep(0.1)


if __name__ == "__main__":
    main()
