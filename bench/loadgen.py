"""A small, fast HTTP/1.1 load generator for the ingress benchmark (runs as its own process).

Python HTTP clients spend more CPU per request than the server under test, which would make
the benchmark measure the client. This one writes pre-built GET requests on keep-alive
connections with asyncio streams and times each answer, at a fixed offered rate (open loop:
requests are scheduled by the clock, not by the previous answer, so queueing shows up in the
latency instead of silently lowering the rate) or as fast as possible (closed loop).

Usage: python bench/loadgen.py URL_PATH HOST PORT --rate 1000 --seconds 10 --connections 32
Prints one JSON line: sent, ok, errors, elapsed, rate, latency percentiles in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import time


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values`` by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def company_query(seq: int, spread: int, token_format: str) -> str:
    """``token=...&company_id=N`` of the company event ``seq`` belongs to (1..spread, in
    turn), each company with its own ingress token (``token_format`` with ``{n}``)."""
    n = seq % spread + 1
    return f"token={token_format.format(n=n)}&company_id={n}"


def make_request(
    host: str, port: int, path: str, seq: int, salt: str, spread: int = 0, token_format: str = ""
) -> bytes:
    """A ring event with a unique call id (so nothing is deduplicated); with ``spread``,
    of one of that many companies in turn (``path`` then ends with ``?``)."""
    call_id = f"{(seq * 2654435761) & 0xFFFFFFFF:08X}"
    if spread:
        path = path + company_query(seq, spread, token_format)
    query = (
        f"{path}&ssn_event=16&sender_id=7&sender_type=0&call_id={call_id}"
        f"&number=06{seq % 100000000:08d}&ext=201&identity=Bench|Caller|Load|0|0&run={salt}"
    )
    return f"GET {query} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response with Content-Length; return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def run(args: argparse.Namespace) -> dict[str, float | int]:
    salt = os.urandom(4).hex()
    counter = itertools.count(args.start)
    latencies: list[float] = []
    errors = 0
    ok = 0
    started = time.perf_counter()
    deadline = started + args.seconds
    trace: list[tuple[float, float]] | None = [] if args.trace else None
    interval = args.connections / args.rate if args.rate else 0.0

    async def worker(index: int) -> None:
        nonlocal errors, ok
        reader, writer = await asyncio.open_connection(args.host, args.port)
        next_at = time.perf_counter() + (interval * index / args.connections if interval else 0)
        while True:
            now = time.perf_counter()
            if now >= deadline:
                break
            if interval:
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                scheduled = next_at
                next_at += interval
            else:
                scheduled = time.perf_counter()
            seq = next(counter)
            writer.write(
                make_request(
                    args.host, args.port, args.path, seq, salt, args.spread, args.token_format
                )
            )
            status = await read_response(reader)
            latencies.append(time.perf_counter() - scheduled)
            if trace is not None:
                trace.append((scheduled - started, latencies[-1]))
            if status == 200:
                ok += 1
            else:
                errors += 1
        writer.close()

    await asyncio.gather(*(worker(i) for i in range(args.connections)))
    elapsed = time.perf_counter() - started
    if trace is not None:
        with open(args.trace, "w") as out:
            out.writelines(f"{at:.4f} {lat * 1000:.3f}\n" for at, lat in sorted(trace))
    ms = [x * 1000 for x in latencies]
    return {
        "offered_rate": args.rate or 0,
        "sent": len(latencies),
        "ok": ok,
        "errors": errors,
        "elapsed_s": round(elapsed, 3),
        "rate": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="path and query prefix, e.g. /pbx/events?token=T")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--rate", type=float, default=0, help="offered events/s (0: max)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--trace", help="write 'second latency_ms' per request to this file")
    parser.add_argument("--spread", type=int, default=0, help="events of N companies in turn")
    parser.add_argument(
        "--token-format", default="", help="with --spread: company n's token, e.g. tok-{n:03d}"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
