"""``make bench``: ingress throughput and ack latency, pop latency, and a naive handler.

Everything runs as real processes on loopback: ``callbridge serve`` (durable SQLite journal,
engine running), a load generator in its own process, an SSE subscriber. Prints figures and
writes them to ``bench/results/<date>-<host>.json``; asserts nothing about time.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CALLBRIDGE = str(Path(PYTHON).with_name("callbridge"))
TOKEN = "bench-ingress-token-0123456789"
API = "bench-api-token-0123456789abcdef"
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start_server(data: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    environ = {
        **os.environ,
        "CALLBRIDGE_DATA_DIR": str(data),
        "CALLBRIDGE_INGRESS_TOKEN": TOKEN,
        "CALLBRIDGE_SERVER__API_TOKENS": f"{API}:*",
        "CALLBRIDGE_CONSOLE_ENABLED": "false",
        "CALLBRIDGE_LOG_LEVEL": "WARNING",
        **env,
    }
    proc = subprocess.Popen(
        [CALLBRIDGE, "serve", "--port", str(port)], env=environ, stderr=subprocess.DEVNULL
    )
    wait_ready(f"http://127.0.0.1:{port}/healthz")
    return proc


def load(
    port: int,
    rate: float,
    start: int,
    path: str = f"/pbx/events?token={TOKEN}",
    extra: tuple[str, ...] = (),
) -> Any:
    """One run of ``bench/loadgen.py`` (``extra``: more of its options); its JSON figures."""
    out = subprocess.run(
        [
            PYTHON,
            str(ROOT / "bench" / "loadgen.py"),
            path,
            "127.0.0.1",
            str(port),
            "--rate",
            str(rate),
            "--seconds",
            str(SECONDS),
            "--connections",
            "32",
            "--start",
            str(start),
            *extra,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def engine_catch_up(data: Path, timeout: float = 120) -> float:
    """Seconds until the engine has handled every journaled event (its cursor reaches the end).

    The ingress acks before the engine works, so a fast ack proves nothing if the engine
    falls behind: this says whether it kept up (a second or less: it did).
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.closing(sqlite3.connect(data / "journal.sqlite3")) as events:
            (last,) = events.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        with contextlib.closing(sqlite3.connect(data / "journal-state.sqlite3")) as state:
            (done,) = state.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM cursors WHERE name = 'dispatcher'"
            ).fetchone()
        if done >= last:
            return round(time.monotonic() - started, 1)
        time.sleep(0.1)
    return float("nan")


def ingress(tmp: Path) -> list[Any]:
    port = free_port()
    proc = start_server(tmp / "ingress", port)
    results = []
    try:
        for i, rate in enumerate((200, 1000, 0)):
            result = load(port, rate, start=i * 10_000_000)
            result["engine_caught_up_s"] = engine_catch_up(tmp / "ingress")
            results.append(result)
            label = f"{rate}/s" if rate else "max"
            print(
                f"  ingress {label:>7}: {result['rate']:8.1f} ev/s  p50 {result['p50_ms']:.2f} ms"
                f"  p99 {result['p99_ms']:.2f} ms  errors {result['errors']}"
                f"  (engine done {result['engine_caught_up_s']} s later)"
            )
    finally:
        proc.terminate()
        proc.wait(30)
    return results


def pop_latency(tmp: Path, samples: int = 60) -> dict[str, Any]:
    port = free_port()
    proc = start_server(
        tmp / "pops", port, CALLBRIDGE_PLUGINS=str(ROOT / "bench" / "slow_lookup.py")
    )
    received: dict[str, float] = {}
    ready = threading.Event()

    def listen() -> None:
        url = f"http://127.0.0.1:{port}/v1/agents/201/events?access_token={API}"
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream("GET", url, timeout=None) as response,
        ):
            for line in response.iter_lines():
                if line.startswith(": connected"):
                    ready.set()
                if line.startswith("data:"):
                    data = json.loads(line[5:])
                    if data.get("state") == "ringing":
                        received.setdefault(data["call"]["user_call_id"], time.perf_counter())

    threading.Thread(target=listen, daemon=True).start()
    ready.wait(10)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}")

    def ring(seq: int, number: str) -> float:
        call_id = f"{0xB0000000 + seq:08X}"
        sent = time.perf_counter()
        client.get(
            "/pbx/events",
            params={
                "token": TOKEN,
                "ssn_event": "16",
                "call_id": call_id,
                "number": number,
                "ext": "201",
                "sender_id": "7",
            },
        )
        deadline = time.monotonic() + 10
        while call_id not in received and time.monotonic() < deadline:
            time.sleep(0.0005)
        return (received.get(call_id, float("nan")) - sent) * 1000

    try:
        ring(20_000, "0699999999")  # warm up: first imports, connections, plugin start
        misses = [ring(i, f"06{5550000 + i:07d}") for i in range(samples)]
        ring(10_000, "0612345678")  # warm the cache
        hits = [ring(10_001 + i, "0612345678") for i in range(samples)]
    finally:
        proc.terminate()
        proc.wait(30)
    from loadgen import percentile

    print(f"  (miss samples, ms: {sorted(round(m, 1) for m in misses)[-5:]} slowest)")
    figures = {
        "miss_p50_ms": round(percentile(misses, 50), 2),
        "miss_p99_ms": round(percentile(misses, 99), 2),
        "hit_p50_ms": round(percentile(hits, 50), 2),
        "hit_p99_ms": round(percentile(hits, 99), 2),
    }
    for label, key in (("100 ms lookup, miss", "miss"), ("cache hit", "hit")):
        p50, p99 = figures[f"{key}_p50_ms"], figures[f"{key}_p99_ms"]
        print(f"  pop ({label}): p50 {p50} ms  p99 {p99} ms")
    return figures


def naive(tmp: Path, ours_p50: float) -> dict[str, Any]:
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / "naive.py"), str(port), str(tmp / "naive.sqlite3")],
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/pbx/events")
        result = load(port, 200, start=50_000_000, path="/pbx/events?token=x")
    finally:
        proc.terminate()
        proc.wait(30)
    ratio = result["p50_ms"] / ours_p50 if ours_p50 else float("nan")
    print(
        f"  naive handler at 200/s: p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms"
        f"  -> callbridge acks {ratio:.0f}x faster (p50)"
    )
    return {**result, "p50_ratio_vs_callbridge": round(ratio, 1)}


def main() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    machine = {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    print(
        f"callbridge benchmark on {machine['host']} ({machine['cpus']} CPUs), "
        f"{SECONDS:.0f} s per rate"
    )
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        ingress_results = ingress(tmp)
        pops = pop_latency(tmp)
        naive_result = naive(tmp, ingress_results[0]["p50_ms"])
    date = datetime.now(UTC)
    record = {
        "date": date.isoformat(),
        "machine": machine,
        "ingress": ingress_results,
        "pop_latency": pops,
        "naive": naive_result,
    }
    out = ROOT / "bench" / "results" / f"{date:%Y%m%d-%H%M%S}-{machine['host']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    import companies  # many companies: start-up, memory per company, spread ingress

    companies.main()


if __name__ == "__main__":
    main()
