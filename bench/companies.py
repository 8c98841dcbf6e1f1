"""Figures for many companies: start-up time, memory at rest, ack p99 at 1,000 events/s.

``make bench`` runs this after the single-company figures (``bench/run.py``); it can also run
alone (``python bench/companies.py``). It writes a companies file of N companies (issue 15's
format: each with its own company id, ingress token, API token, a ``directory`` instance
with its own database, and a ``webhook`` instance), starts ``callbridge serve`` on it as a
real process, and measures:

- start-up: seconds from the process start to ``/readyz`` answering 200;
- RSS at rest: the resident memory of the service's processes (HTTP and engine) once ready
  and idle, for 1 (no companies file), 10 and 100 companies; a company's cost is the slope
  between 10 and 100 (fixed costs cancel out; the target is well under 1 MB);
- ingress ack latency at 1,000 events/s spread over the companies: each event carries its
  company's id and token (``bench/loadgen.py --spread``).

It needs the companies loader (``callbridge.companies``); without it, it says so and skips.
Asserts nothing about time; prints the figures and writes them to
``bench/results/<date>-<host>-companies.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from run import CALLBRIDGE, free_port, load, wait_ready  # noqa: E402

#: Company sizes measured; the memory slope is taken between the last two
#: (``BENCH_COMPANY_SIZES=1,3,5`` for a quick try of the script itself).
SIZES = tuple(int(n) for n in os.environ.get("BENCH_COMPANY_SIZES", "1,10,100").split(","))
#: The ingress token of company ``n`` (loadgen builds the same with ``--token-format``).
TOKEN_FORMAT = "bench-company-{n:03d}-ingress-token"
API_FORMAT = "bench-company-{n:03d}-api-token-0123456789"
#: Webhook instances point here; with ``pops = false`` and only ringing calls in the load,
#: nothing is ever sent to it.
WEBHOOK_URL = "http://127.0.0.1:9/callbridge-bench"


def company_name(n: int) -> str:
    """The name of company ``n`` (1-based): ``c001``."""
    return f"c{n:03d}"


def companies_toml(count: int, root: Path) -> str:
    """A companies file of ``count`` companies, each with a directory and a webhook."""
    blocks = []
    for n in range(1, count + 1):
        name = company_name(n)
        blocks.append(
            "\n".join(
                [
                    f"[companies.{name}]",
                    f'company_id = "{n}"',
                    f'ingress_token = "{TOKEN_FORMAT.format(n=n)}"',
                    f'api_tokens = ["{API_FORMAT.format(n=n)}:*"]',
                    f"[companies.{name}.pbx_client]",
                    f'user = "auth-callbridge@{name}"',
                    'password = "bench-password"',
                    f'agents = ["201=auth-agent@{name}"]',
                    f"[companies.{name}.plugins.directory]",
                    f"database = {json.dumps(str(root / name / 'directory.sqlite3'))}",
                    f"[companies.{name}.plugins.webhook]",
                    f'urls = ["{WEBHOOK_URL}"]',
                    f'secret = "bench-webhook-secret-{n:03d}"',
                    "pops = false",
                ]
            )
        )
    return "\n\n".join(blocks) + "\n"


def _status(pid: int) -> dict[str, str]:
    """``/proc/<pid>/status`` as a dict (empty when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def process_tree(pid: int) -> set[int]:
    """``pid`` and every descendant (the engine runs in a child process of ``serve``)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            ppid = _status(int(entry.name)).get("PPid", "").strip()
            if ppid.isdigit():
                parents[int(entry.name)] = int(ppid)
    tree = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grew = True
    return tree


def process_tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every descendant."""
    total = 0
    for member in process_tree(pid):
        rss = _status(member).get("VmRSS", "").split()
        if rss:
            total += int(rss[0]) * 1024
    return total


def per_company(rss: dict[int, int]) -> float:
    """Bytes a company costs: the slope of RSS between the two largest sizes measured."""
    (small, small_rss), (large, large_rss) = sorted(rss.items())[-2:]
    return (large_rss - small_rss) / (large - small)


def loader_available() -> bool:
    """Whether this callbridge has the companies loader (issue 15, part A)."""
    spec = importlib.util.find_spec("callbridge.companies")
    return spec is not None and spec.origin is not None  # not a leftover bytecode folder


def start(data: Path, count: int, port: int) -> tuple[subprocess.Popen[bytes], float]:
    """``callbridge serve`` with ``count`` companies (1: no file); (process, start-up s)."""
    env = {
        **os.environ,
        "CALLBRIDGE_DATA_DIR": str(data),
        "CALLBRIDGE_CONSOLE_ENABLED": "false",
        "CALLBRIDGE_LOG_LEVEL": "WARNING",
    }
    data.mkdir(parents=True, exist_ok=True)
    if count > 1:
        path = data / "companies.toml"
        path.write_text(companies_toml(count, data))
        env["CALLBRIDGE_COMPANIES_FILE"] = str(path)
    else:
        env["CALLBRIDGE_INGRESS_TOKEN"] = TOKEN_FORMAT.format(n=1)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [CALLBRIDGE, "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    wait_ready(f"http://127.0.0.1:{port}/readyz", timeout=300)
    return proc, time.perf_counter() - started


def at_rest(pid: int, timeout: float = 120) -> None:
    """Wait until the engine's process is up beside the HTTP one (``/readyz`` may answer
    before it is, on a busy machine), then a few seconds more for its start-up work."""
    deadline = time.monotonic() + timeout
    while len(process_tree(pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)


def spread_load(port: int, companies: int, rate: float = 1000) -> Any:
    """The load generator at ``rate``, each event of one of ``companies`` in turn."""
    spread = ("--spread", str(companies), "--token-format", TOKEN_FORMAT)
    return load(port, rate, 0, "/pbx/events?", spread)


def measure(tmp: Path) -> dict[str, Any]:
    """Start-up and RSS at each size, then the spread load on the largest."""
    startup: dict[int, float] = {}
    rss: dict[int, int] = {}
    load: Any = None
    for count in SIZES:
        port = free_port()
        proc, seconds = start(tmp / f"n{count}", count, port)
        try:
            at_rest(proc.pid)
            startup[count] = round(seconds, 2)
            rss[count] = process_tree_rss(proc.pid)
            mib = rss[count] / 2**20
            print(f"  {count:>3} companies: ready in {seconds:.2f} s, RSS {mib:.1f} MiB")
            if count == SIZES[-1]:
                load = spread_load(port, count)
                print(
                    f"  ingress 1000/s over {count} companies: p50 {load['p50_ms']:.2f} ms"
                    f"  p99 {load['p99_ms']:.2f} ms  errors {load['errors']}"
                )
        finally:
            proc.terminate()
            proc.wait(60)
    cost = per_company(rss)
    print(f"  memory per company at rest: {cost / 1024:.0f} KiB (target well under 1 MB)")
    return {
        "startup_s": startup,
        "rss_bytes": rss,
        "bytes_per_company": round(cost),
        "ingress_spread": load,
    }


def main() -> None:
    if not loader_available():
        print("companies benchmark skipped: this callbridge has no companies loader yet")
        return
    print(f"callbridge companies benchmark ({', '.join(map(str, SIZES))} companies)")
    with tempfile.TemporaryDirectory() as name:
        figures = measure(Path(name))
    date = datetime.now(UTC)
    host = platform.node()
    record = {"date": date.isoformat(), "host": host, "cpus": os.cpu_count(), **figures}
    out = ROOT / "bench" / "results" / f"{date:%Y%m%d-%H%M%S}-{host}-companies.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
