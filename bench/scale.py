"""``make bench-scale``: engine workers sharing one Redis journal, and takeover after kill -9.

Starts its own redis-server (``appendonly yes``, ``appendfsync always``), then for 1, 2 and
3 ``callbridge engine --journal redis://...`` workers (a fresh key prefix each time, the
``directory`` plugin answering lookups and writing one activity per call):

- **ringing calls per second**: once the workers hold every partition, CALLS new calls that
  only ring (one event 16 each, as in ``make bench``: a lookup and a pop) are appended, and
  the figure is CALLS / (last pop written - first event appended), with the workers' CPU per
  ringing call;
- **calls fully handled per second**: then CALLS calls
  (16, 18, 21 each) are appended as fast as the journal takes them, from this process; the
  figure is CALLS / (last activity written - first event appended);
- **CPU per call per worker**: the workers' user + system CPU time over the run (from
  ``/proc/<pid>/stat``), divided by CALLS: what a larger machine divides into;
- with 3 workers, **takeover**: one worker killed -9, seconds until every partition is
  leased to a live worker again, then until a call rung on one of its partitions pops.

Prints the figures and writes them to ``bench/results/scale-<date>-<host>.json``. Long (a
few minutes), so not part of ``make bench``. Asserts nothing.

    .venv/bin/python bench/scale.py [--calls N] [--workers 1,2,3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from journal_append_redis import _start_server

from callbridge.engine.partitions import event_partition
from callbridge.journal.redis import RedisJournal
from callbridge.voispeed.events import parse_event

ROOT = Path(__file__).resolve().parent.parent
CALLBRIDGE = str(Path(sys.executable).with_name("callbridge"))
PARTITIONS = 64
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def call_params(n: int, event: str, ext: str = "201") -> dict[str, str]:
    base = {"call_id": f"{n:08X}", "company_id": "1", "sender_type": "0"}
    number = f"06{n:08d}"
    if event == "18":
        return {**base, "ssn_event": "18", "number": ext, "ext": number}
    return {**base, "ssn_event": event, "number": number, "ext": ext}


def start_workers(count: int, url: str, tmp: Path) -> list[subprocess.Popen[bytes]]:
    workers = []
    for n in range(count):
        data = tmp / f"w{n}"
        data.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "CALLBRIDGE_DATA_DIR": str(data),
            "CALLBRIDGE_CONNECTORS": "directory",
            "CALLBRIDGE_LOG_LEVEL": "WARNING",
            "CALLBRIDGE_TRACKER__GROUP_WINDOW": "0",
        }
        workers.append(
            subprocess.Popen(
                [CALLBRIDGE, "engine", "--journal", url],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(data / "engine.log").open("ab"),
            )
        )
    return workers


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def leases(client: redis.Redis, prefix: str) -> list[str | None]:
    return client.mget([f"{prefix}:lease:{p}" for p in range(PARTITIONS)])  # type: ignore[return-value]


def balanced(client: redis.Redis, prefix: str, count: int) -> bool:
    owners = leases(client, prefix)
    if None in owners:
        return False
    held = {o: owners.count(o) for o in set(owners)}
    return len(held) == count and max(held.values()) <= -(-PARTITIONS // count)


def done_count(journal: RedisJournal) -> int:
    return sum(n for plugin, state, n in journal.delivery_counts() if state == "done")


def append_calls(
    journal: RedisJournal, calls: int, start: int, events: tuple[str, ...] = ("16", "18", "21")
) -> None:
    """Every call's events, in order per call, as fast as the journal takes them (a call
    that only rings goes to extension 202, so its pop is told apart)."""
    ext = "201" if len(events) > 1 else "202"

    def one(n: int) -> None:
        for event in events:
            params = call_params(n, event, ext)
            journal.append_event(parse_event(params), raw=params, source="bench")

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(one, range(start, start + calls)))


def run(count: int, calls: int, port: int, tmp: Path) -> dict[str, Any]:
    prefix = f"scale{count}-{os.getpid()}"
    url = f"redis://127.0.0.1:{port}/0?prefix={prefix}"
    client = redis.Redis(port=port, decode_responses=True)
    workers = start_workers(count, url, tmp / prefix)
    journal = RedisJournal(url)
    result: dict[str, Any] = {"workers": count, "calls": calls}
    try:
        wait_for(lambda: balanced(client, prefix, count), 120, "a balanced share")
        result["ringing"] = measure(
            workers,
            calls,
            lambda: append_calls(journal, calls, 10_000_000, ("16",)),
            lambda: client.xlen(f"{prefix}:agent:202") >= calls,
        )
        full = measure(
            workers,
            calls,
            lambda: append_calls(journal, calls, 0),
            lambda: done_count(journal) >= calls,
        )
        result.update(full)
        if count == 3:
            result["takeover"] = takeover(client, journal, prefix, workers[0], calls)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(60)
        journal.close()
        client.close()
    return result


def measure(
    workers: list[subprocess.Popen[bytes]], calls: int, append: Any, done: Any
) -> dict[str, Any]:
    """Calls per second and the workers' CPU per call, from the first append to ``done``."""
    cpu0 = [cpu_seconds(w.pid) for w in workers]
    started = time.monotonic()
    append()
    appended = time.monotonic() - started
    wait_for(done, 900, "the last pop or activity", 0.02)
    elapsed = time.monotonic() - started
    cpu = [cpu_seconds(w.pid) - c for w, c in zip(workers, cpu0, strict=True)]
    return {
        "append_s": round(appended, 2),
        "elapsed_s": round(elapsed, 2),
        "calls_per_s": round(calls / elapsed, 1),
        "cpu_ms_per_call": round(sum(cpu) / calls * 1000, 3),
        "cpu_s_per_worker": [round(c, 2) for c in cpu],
    }


def takeover(
    client: redis.Redis, journal: RedisJournal, prefix: str, victim: subprocess.Popen[bytes], n: int
) -> dict[str, float]:
    """kill -9 one worker; seconds until its partitions are leased again, and until a call
    rung on one of them right after the kill pops."""
    mine = [p for p, o in enumerate(leases(client, prefix)) if o and f":{victim.pid}:" in o]
    call = next(
        c
        for c in range(n, n + 100_000)
        if _partition(c) in mine  # a call the dead worker would have handled
    )
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(30)
    killed = time.monotonic()
    params = call_params(call, "16", "203")
    journal.append_event(parse_event(params), raw=params, source="bench")

    def owned_by_live() -> bool:
        return all(o is not None and f":{victim.pid}:" not in o for o in leases(client, prefix))

    wait_for(owned_by_live, 60, "the takeover", 0.02)
    taken = time.monotonic() - killed

    def popped() -> bool:
        return bool(client.xlen(f"{prefix}:agent:203"))

    wait_for(popped, 60, "the pop", 0.05)
    return {"leases_s": round(taken, 2), "pop_s": round(time.monotonic() - killed, 2)}


def _partition(n: int) -> int:
    params = call_params(n, "16")
    return event_partition(parse_event(params), PARTITIONS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--workers", default="1,2,3")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="callbridge-scale-") as tmp:
        (Path(tmp) / "redis").mkdir()
        process, port = _start_server(Path(tmp) / "redis", "always")
        try:
            rows = []
            for count in (int(c) for c in args.workers.split(",")):
                row = run(count, args.calls, port, Path(tmp))
                rows.append(row)
                print(
                    f"  {count} worker(s): {row['calls_per_s']:8.1f} calls/s "
                    f"({row['calls']} calls in {row['elapsed_s']} s, appended in "
                    f"{row['append_s']} s), CPU {row['cpu_ms_per_call']:.3f} ms per call "
                    f"(per worker {row['cpu_s_per_worker']} s)"
                )
                ringing = row["ringing"]
                print(
                    f"             ringing only: {ringing['calls_per_s']:8.1f} calls/s, "
                    f"CPU {ringing['cpu_ms_per_call']:.3f} ms per call"
                )
                if "takeover" in row:
                    print(f"  takeover after kill -9: {row['takeover']}")
        finally:
            process.terminate()
            process.wait(30)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = ROOT / "bench" / "results" / f"scale-{stamp}-{platform.node()}.json"
    body = {"at": stamp, "host": platform.node(), "cpus": os.cpu_count(), "runs": rows}
    out.write_text(json.dumps(body, indent=2) + "\n")
    print(f"  written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
