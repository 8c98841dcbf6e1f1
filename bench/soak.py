"""``make soak``: a steady load for as long as you like, against a CRM that fails and stalls.

A real ``callbridge serve`` (default process mode: HTTP process + engine child, durable SQLite
journal) takes ``--rate`` PBX events a second (whole calls: ring, answer, hang-up) while its
webhook connector writes each finished call to a CRM in this process that answers 500 to
``--fail`` of the requests and stalls past the connector's timeout on ``--stall`` of them
(it still writes the activity then, as a slow CRM does: the retry must not add a second one;
the receiver deduplicates on the Idempotency-Key as the webhook docs ask).

Each minute it prints the RSS of every process, the journal's size on disk, the delivery lag
(end event acknowledged -> activity stored) and the error counts, including the engine's
counters read from ``/metrics``. At the end it stops the load, waits for the backlog, and
checks that every call was delivered exactly once. Figures go to
``bench/results/soak-<date>-<host>.json``; nothing is asserted about time.

    make soak SOAK_MINUTES=30
    .venv/bin/python bench/soak.py --minutes 5 --rate 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
CALLBRIDGE = str(Path(sys.executable).with_name("callbridge"))
TOKEN = "soak-ingress-token-0123456789"
SECRET = "soak-webhook-secret-0123456789"
#: Seconds the webhook waits for the CRM; a stall lasts longer.
WEBHOOK_TIMEOUT = 2.0
STALL = 4.0


class Crm:
    """The webhook receiver: fails, stalls, and stores one activity per Idempotency-Key."""

    def __init__(self, fail: float, stall: float, seed: int = 20) -> None:
        self.fail, self.stall = fail, stall
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.stored: dict[str, float] = {}
        self.posts: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key") or ""
                with outer.lock:
                    draw = outer.random.random()
                    outer.posts[key] += 1
                if draw < outer.fail:
                    outer._count("500")
                    self._reply(500)
                    return
                if draw < outer.fail + outer.stall:
                    outer._count("stalled")
                    time.sleep(STALL)  # the client gave up; the CRM writes it anyway
                else:
                    outer._count("200")
                with outer.lock:
                    outer.stored.setdefault(key, time.monotonic())
                self._reply(200)

            def _reply(self, status: int) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client timed out and left

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/crm"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _count(self, answer: str) -> None:
        with self.lock:
            self.answers[answer] += 1


class Load:
    """Whole calls at ``rate`` events a second, paced; remembers when each end was acked."""

    def __init__(self, url: str, rate: float, threads: int = 4) -> None:
        self.url, self.rate, self.threads = url, rate, threads
        self.lock = threading.Lock()
        self.ended: dict[str, float] = {}
        self.acks: Counter[int] = Counter()
        self.stop = threading.Event()
        self.next_call = 0

    def run(self) -> None:
        workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def _take(self) -> int:
        with self.lock:
            self.next_call += 1
            return self.next_call

    def _run(self) -> None:
        interval = 3 * self.threads / self.rate  # each thread sends one call (3 events) per turn
        due = time.monotonic() + random.random() * interval
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                n = self._take()
                call_id = f"{n:08X}"
                base = {"call_id": call_id, "company_id": "1", "sender_type": "0"}
                ext = str(201 + n % 20)
                for params in (
                    {**base, "ssn_event": "16", "number": "0612345678", "ext": ext},
                    {**base, "ssn_event": "18", "number": ext, "ext": "0612345678"},
                    {**base, "ssn_event": "21", "number": "0612345678", "ext": ext},
                ):
                    status = 0
                    while status != 200 and not self.stop.is_set():
                        try:
                            status = client.get(
                                "/pbx/events", params={**params, "token": TOKEN}
                            ).status_code
                        except httpx.HTTPError:
                            status = -1
                        with self.lock:
                            self.acks[status] += 1
                        if status != 200:
                            time.sleep(1)  # as the PBX's trigger does: try again
                    if status == 200 and params["ssn_event"] == "21":
                        with self.lock:
                            self.ended[f"callbridge:1:{call_id}:webhook"] = time.monotonic()
                due += interval
                time.sleep(max(0.0, due - time.monotonic()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(") ", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def journal_mb(data: Path) -> float:
    return round(sum(p.stat().st_size for p in data.glob("journal*")) / 1e6, 1)


def scrape(url: str) -> dict[str, float]:
    """The counters an operator alerts on, summed over their labels but ``result``."""
    wanted = re.compile(
        r"^(callbridge_(?:delivery_attempts_total|events_failed_total|events_rejected_total"
        r"|engine_restarts_total|pops_total|lookups_total))(\{[^}]*\})? (\S+)$"
    )
    totals: Counter[str] = Counter()
    try:
        text = httpx.get(f"{url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    for line in text.splitlines():
        match = wanted.match(line)
        if match:
            name, labels, value = match.groups()
            result = re.search(r'result="([^"]+)"', labels or "")
            key = name + (f"[{result.group(1)}]" if result else "")
            totals[key] += float(value)
    return dict(totals)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 30)))
    parser.add_argument("--rate", type=float, default=100.0, help="PBX events a second")
    parser.add_argument("--fail", type=float, default=0.05, help="share of CRM requests failing")
    parser.add_argument("--stall", type=float, default=0.01, help="share of CRM requests stalling")
    parser.add_argument(
        "--retention-minutes", type=float, default=5.0, help="journal retention for the run"
    )
    parser.add_argument("--drain-minutes", type=float, default=10.0)
    args = parser.parse_args()

    crm = Crm(args.fail, args.stall)
    tmp = Path(tempfile.mkdtemp(prefix="callbridge-soak-"))
    data = tmp / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")},
        "CALLBRIDGE_DATA_DIR": str(data),
        "CALLBRIDGE_INGRESS_TOKEN": TOKEN,
        "CALLBRIDGE_CONNECTORS": "webhook",
        "CALLBRIDGE_WEBHOOK_URLS": crm.url,
        "CALLBRIDGE_WEBHOOK_SECRET": SECRET,
        "CALLBRIDGE_WEBHOOK_POPS": "false",
        "CALLBRIDGE_WEBHOOK_TIMEOUT": str(WEBHOOK_TIMEOUT),
        "CALLBRIDGE_TRACKER__GROUP_WINDOW": "0",
        "CALLBRIDGE_DISPATCH__BACKOFF_INITIAL": "1",
        "CALLBRIDGE_DISPATCH__BACKOFF_MAX": "10",
        "CALLBRIDGE_RETENTION_DAYS": str(args.retention_minutes / 1440),
        "CALLBRIDGE_PRUNE_INTERVAL": "60",
        "CALLBRIDGE_LOG_LEVEL": "WARNING",
    }
    log_path = tmp / "serve.log"
    with log_path.open("wb") as log:
        serve = subprocess.Popen(
            [CALLBRIDGE, "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or serve.poll() is not None:
            raise SystemExit(f"callbridge serve did not become ready; see {log_path}")
        time.sleep(0.2)

    print(
        f"soak: {args.minutes:g} min at {args.rate:g} events/s, CRM fails {args.fail:.0%} and "
        f"stalls {args.stall:.0%} ({STALL:g} s > the {WEBHOOK_TIMEOUT:g} s timeout); "
        f"retention {args.retention_minutes:g} min; data in {data}",
        flush=True,
    )
    print(
        "  min | rss serve / engine / soak MB | journal MB | acked calls | stored | backlog |"
        " lag p50/p99/max s | CRM 500/stalled | attempts retry/dead | events failed | restarts",
        flush=True,
    )
    load = Load(url, args.rate)
    loader = threading.Thread(target=load.run, daemon=True)
    started = time.monotonic()
    loader.start()
    rows: list[dict[str, Any]] = []
    seen_lag: set[str] = set()
    minute = 0
    stop_at = started + args.minutes * 60
    draining_until = stop_at + args.drain_minutes * 60
    while True:
        now = time.monotonic()
        if now >= stop_at and not load.stop.is_set():
            load.stop.set()
        with load.lock:
            ended = dict(load.ended)
        with crm.lock:
            stored = dict(crm.stored)
            answers = Counter(crm.answers)
        if load.stop.is_set() and (set(ended) <= set(stored) or now > draining_until):
            break
        time.sleep(max(0.0, started + (minute + 1) * 60 - time.monotonic()))
        minute += 1
        with load.lock:
            ended = dict(load.ended)
        with crm.lock:
            stored = dict(crm.stored)
            answers = Counter(crm.answers)
        lags = [stored[k] - ended[k] for k in stored if k in ended and k not in seen_lag]
        seen_lag.update(k for k in stored if k in ended)
        engines = children(serve.pid)
        counters = scrape(url)
        row = {
            "minute": minute,
            "rss_serve_mb": rss_mb(serve.pid),
            "rss_engine_mb": rss_mb(engines[0]) if engines else float("nan"),
            "rss_soak_mb": rss_mb(os.getpid()),
            "journal_mb": journal_mb(data),
            "acked_calls": len(ended),
            "stored": len(stored),
            "backlog": len(set(ended) - set(stored)),
            "lag_p50_s": round(percentile(lags, 0.5), 1),
            "lag_p99_s": round(percentile(lags, 0.99), 1),
            "lag_max_s": round(max(lags), 1) if lags else float("nan"),
            "crm_500": answers["500"],
            "crm_stalled": answers["stalled"],
            "counters": counters,
        }
        rows.append(row)
        retries = counters.get("callbridge_delivery_attempts_total[retry]", 0)
        print(
            f"  {minute:3d} | {row['rss_serve_mb']:6.1f} / {row['rss_engine_mb']:6.1f} /"
            f" {row['rss_soak_mb']:5.1f} | {row['journal_mb']:10.1f} | {len(ended):11d} |"
            f" {len(stored):6d} | {row['backlog']:7d} | {row['lag_p50_s']:5.1f} /"
            f" {row['lag_p99_s']:5.1f} / {row['lag_max_s']:5.1f} | {answers['500']:5d} /"
            f" {answers['stalled']:4d} | {retries:6.0f} /"
            f" {counters.get('callbridge_delivery_attempts_total[dead]', 0):4.0f} |"
            f" {counters.get('callbridge_events_failed_total', 0):13.0f} |"
            f" {counters.get('callbridge_engine_restarts_total', 0):8.0f}",
            flush=True,
        )
    loader.join(30)
    serve.terminate()
    serve.wait(60)

    with load.lock:
        ended = dict(load.ended)
        acks = Counter(load.acks)
    with crm.lock:
        stored = dict(crm.stored)
        posts = Counter(crm.posts)
    missing = sorted(set(ended) - set(stored))
    unexpected = sorted(set(stored) - set(ended))
    repeats = sum(n - 1 for n in posts.values() if n > 1)
    log_lines = log_path.read_text(errors="replace").splitlines()
    tracebacks = sum(1 for line in log_lines if line.startswith("Traceback"))
    warm = [r for r in rows if r["minute"] >= min(5, len(rows))]
    summary = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "args": vars(args),
        "calls_acked": len(ended),
        "activities_stored": len(stored),
        "missing": len(missing),
        "unexpected": len(unexpected),
        "crm_posts_beyond_the_first_per_call": repeats,
        "acks": {str(k): v for k, v in acks.items()},
        "log_lines": len(log_lines),
        "tracebacks": tracebacks,
        "engine_rss_after_warmup_mb": (
            [min(r["rss_engine_mb"] for r in warm), max(r["rss_engine_mb"] for r in warm)]
            if warm
            else None
        ),
        "journal_mb_last": rows[-1]["journal_mb"] if rows else None,
        "lag_p50_median_s": statistics.median(r["lag_p50_s"] for r in rows) if rows else None,
        "minutes": rows,
    }
    print(
        f"soak done: {len(ended)} calls acknowledged, {len(stored)} activities stored, "
        f"{len(missing)} missing, {len(unexpected)} unexpected; {repeats} CRM request(s) "
        f"beyond the first per call (retries after a 500 or a stall; the receiver keeps one); "
        f"non-200 acks {sum(v for k, v in acks.items() if k != 200)}; "
        f"{len(log_lines)} log lines, {tracebacks} traceback(s); log {log_path}",
        flush=True,
    )
    out = (
        ROOT / "bench" / "results" / f"soak-{datetime.now(UTC):%Y%m%d-%H%M}-{platform.node()}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print(f"results in {out.relative_to(ROOT)}", flush=True)
    if missing:
        raise SystemExit(f"{len(missing)} call(s) never delivered, e.g. {missing[:5]}")


if __name__ == "__main__":
    main()
