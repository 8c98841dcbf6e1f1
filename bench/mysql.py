"""``make bench-mysql``: what callbridge's MySQL triggers cost the PBX, and how soon events land.

Starts a private MariaDB (``tests/mysql/mysql_server.py``, with the test ``sys_exec`` UDF
compiled from ``tests/mysql/udf/sys_exec.c``: a real ``system()``, a real shell, a real curl)
and measures:

1. **The PBX's write.** One event-producing ``UPDATE monitor_user_calls SET status = 2`` (an
   answer: event 18), autocommit, paced at ``--rate`` a second, ``--updates`` times: mean and
   p99 with no triggers, outbox triggers and sys_exec triggers, each with callbridge up (a
   real ``callbridge serve --source``), down (nothing listening) and hung (the process
   SIGSTOPped: its port still accepts connections, nobody answers). The cases take turns in
   ``--rounds`` rounds, so a burst of load from other jobs does not land on one case only.
2. **Write to journal.** From the start of a PBX write (an INSERT: event 16) to the moment the
   source's ``append_event`` returns, in sys_exec mode (nudged) and in outbox mode at several
   poll intervals. callbridge runs in this process (``LiveService``, the service ``serve``
   builds, engine in a thread) so the journal's append can be timed.
3. **The price of fast polling.** CPU seconds per second of the idle source's process and of
   mariadbd, at each poll interval.

Prints the figures and writes ``bench/results/<date>-<host>-mysql.json``; asserts nothing.

    .venv/bin/python bench/mysql.py [--updates 1000] [--rate 50] [--samples 100]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "mysql"))
sys.path.insert(0, str(ROOT / "bench"))

from mysql_server import UDF_LIBRARY, MariaDB, start_mariadb  # noqa: E402
from run import TOKEN, free_port, start_server  # noqa: E402

from callbridge.mysql import schema, triggers  # noqa: E402
from callbridge.testing.live import LiveService  # noqa: E402

DB = "bench"


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return {
        "n": len(ordered),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
        "p50_ms": round(pct(0.50), 3),
        "p90_ms": round(pct(0.90), 3),
        "p99_ms": round(pct(0.99), 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def _execute(conn: Any, *statements: str) -> None:
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def _reset(conn: Any, mode: str | None, url: str, ringing: int = 0) -> None:
    """Empty tables; ``ringing`` calls ringing (no events); then ``mode``'s triggers, if any."""
    triggers.apply_statements(conn, triggers.uninstall_statements())
    _execute(
        conn,
        "TRUNCATE monitor_user_calls",
        "TRUNCATE callbridge_outbox",
        "TRUNCATE callbridge_answered",
        "TRUNCATE callbridge_errors",
    )
    if ringing:
        _ringing(conn, ringing, _uid(conn))
    if mode is not None:
        triggers.apply_statements(conn, triggers.trigger_statements(mode, url=url, token=TOKEN))


def _ringing(conn: Any, count: int, uid: int) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO monitor_user_calls (companyid, usercallid, userid, direction, status,"
            " party_nr, party_desc) VALUES (1, %s, %s, 1, 1, '0612345678', 'Anna|Bianchi')",
            [(i, uid) for i in range(1, count + 1)],
        )


def _paced(count: int, rate: float, action: Callable[[int], float]) -> list[float]:
    took = []
    next_at = time.perf_counter()
    for i in range(1, count + 1):
        next_at += 1 / rate
        took.append(action(i))
        time.sleep(max(0.0, next_at - time.perf_counter()))
    return took


@contextlib.contextmanager
def _callbridge(state: str, data: Path, dsn: str) -> Iterator[str]:
    """A ``callbridge serve --source`` up, down (nothing on the port) or hung (SIGSTOP)."""
    port = free_port()
    if state == "down":
        yield f"http://127.0.0.1:{port}/pbx/events"
        return
    process = start_server(data, port, CALLBRIDGE_SOURCE=dsn, CALLBRIDGE_CONNECTORS="directory")
    try:
        if state == "hung":
            process.send_signal(signal.SIGSTOP)
        yield f"http://127.0.0.1:{port}/pbx/events"
    finally:
        if state == "hung":
            process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _answers(conn: Any, count: int, rate: float) -> list[float]:
    """``count`` event-producing UPDATEs (ringing -> active: event 18), paced; each one's time."""

    def answer(i: int) -> float:
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute("UPDATE monitor_user_calls SET status = 2 WHERE usercallid = %s", (i,))
        return time.perf_counter() - started

    return _paced(count, rate, answer)


def write_cost(
    db: MariaDB, tmp: Path, updates: int, rate: float, rounds: int
) -> list[dict[str, Any]]:
    """The cases take turns, ``rounds`` times: the other jobs' load falls on all of them alike."""
    conn = db.connect(DB)
    cases = [(None, "-")] + [(m, s) for m in ("outbox", "sys_exec") for s in ("up", "down", "hung")]
    took: dict[tuple[str | None, str], list[float]] = {case: [] for case in cases}
    errors: dict[tuple[str | None, str], int] = dict.fromkeys(cases, 0)
    share = updates // rounds
    for turn in range(rounds):
        for mode, state in cases:
            data = tmp / f"cb-{mode}-{state}-{turn}"
            with _callbridge(state if mode else "down", data, db.url(DB)) as url:
                _reset(conn, mode, url, ringing=share)
                time.sleep(1.0)  # a started service's first polls are over
                took[mode, state] += _answers(conn, share, rate)
                with conn.cursor() as cur:
                    cur.execute("SELECT COALESCE(SUM(`count`), 0) FROM callbridge_errors")
                    errors[mode, state] += int(cur.fetchone()[0])
        print(
            f"  round {turn + 1}/{rounds} done, load average {os.getloadavg()[0]:.1f}", flush=True
        )
    conn.close()
    results = []
    for mode, state in cases:
        row = {
            "triggers": mode or "none",
            "callbridge": state,
            **_ms(took[mode, state]),
            "trigger_errors": errors[mode, state],
        }
        results.append(row)
        print(
            f"  {row['triggers']:8} callbridge {state:4}  mean {row['mean_ms']:7.3f} ms"
            f"  p50 {row['p50_ms']:7.3f} ms  p99 {row['p99_ms']:7.3f} ms",
            flush=True,
        )
    return results


def _uid(conn: Any) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT ID FROM users WHERE extension = '201'")
        return int(cur.fetchone()[0])


def _live(data: Path, dsn: str, poll: float) -> LiveService:
    os.environ.update(
        {
            "CALLBRIDGE_DATA_DIR": str(data),
            "CALLBRIDGE_INGRESS_TOKEN": TOKEN,
            "CALLBRIDGE_SOURCE": dsn,
            "CALLBRIDGE_CONNECTORS": "directory",
            "CALLBRIDGE_CONSOLE_ENABLED": "false",
            "CALLBRIDGE_LOG_LEVEL": "WARNING",
            "CALLBRIDGE_MYSQL_POLL_INTERVAL": str(poll),
        }
    )
    return LiveService()


def write_to_journal(db: MariaDB, tmp: Path, samples: int) -> list[dict[str, Any]]:
    conn = db.connect(DB)
    uid = _uid(conn)
    results = []
    for mode, poll in [("sys_exec", 0.2), ("outbox", 0.2), ("outbox", 0.05), ("outbox", 0.02)]:
        service = _live(tmp / f"live-{mode}-{poll}", db.url(DB), poll)
        _reset(conn, mode, f"{service.url}/pbx/events")
        service.start()
        journal = service.journal
        written: dict[str, float] = {}
        landed: dict[str, float] = {}
        append = journal.append_event

        def timed(
            event: Any, *args: Any, _append: Any = append, _landed: Any = landed, **kw: Any
        ) -> Any:
            result = _append(event, *args, **kw)
            _landed.setdefault(event.call_id, time.perf_counter())
            return result

        journal.append_event = timed  # type: ignore[method-assign]
        try:
            time.sleep(1.0)
            for i in range(1, samples + 1):
                time.sleep(random.uniform(0.05, 0.15))  # not in step with the poll
                call_id = f"{i:08X}"
                written[call_id] = time.perf_counter()
                with conn.cursor() as cur:
                    cur.execute(
                        "INSERT INTO monitor_user_calls (companyid, usercallid, userid, direction,"
                        " status, party_nr) VALUES (1, %s, %s, 1, 1, '0612345678')",
                        (i, uid),
                    )
            deadline = time.monotonic() + 30
            while len(landed) < samples and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            service.stop()
        took = [landed[k] - written[k] for k in written if k in landed]
        row = {"mode": mode, "poll_interval_s": poll, **_ms(took), "lost": samples - len(took)}
        results.append(row)
        print(
            f"  {mode:8} poll {poll:5.2f} s  p50 {row['p50_ms']:7.1f} ms"
            f"  p90 {row['p90_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  lost {row['lost']}",
            flush=True,
        )
    conn.close()
    return results


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def poll_cost(db: MariaDB, tmp: Path, seconds: float) -> list[dict[str, Any]]:
    """CPU seconds per second, idle, of this process (the service) and of mariadbd."""
    conn = db.connect(DB)
    _reset(conn, "outbox", "http://127.0.0.1:1/pbx/events")
    conn.close()
    results = []
    for poll in (30.0, 0.5, 0.2, 0.05, 0.02, 0.01):
        service = _live(tmp / f"idle-{poll}", db.url(DB), poll)
        service.start()
        try:
            time.sleep(1.0)
            ours, theirs = time.process_time(), _cpu_of(db.process.pid)
            time.sleep(seconds)
            ours = (time.process_time() - ours) / seconds
            theirs = (_cpu_of(db.process.pid) - theirs) / seconds
        finally:
            service.stop()
        row = {
            "poll_interval_s": poll,
            "callbridge_cpu_percent": round(ours * 100, 2),
            "mariadbd_cpu_percent": round(theirs * 100, 2),
        }
        results.append(row)
        print(
            f"  poll {poll:5.2f} s  callbridge {row['callbridge_cpu_percent']:5.2f}% of a core"
            f"  mariadbd {row['mariadbd_cpu_percent']:5.2f}%",
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="PBX writes a second")
    parser.add_argument("--rounds", type=int, default=5, help="turns the write cases take")
    parser.add_argument("--samples", type=int, default=100, help="write-to-journal samples")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds per poll-cost figure")
    args = parser.parse_args()
    machine = {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    print(f"callbridge MySQL benchmark on {machine['host']} ({machine['cpus']} CPUs)")
    print(f"load average at start: {machine['load_average_at_start']}")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        db = start_mariadb(tmp / "mariadb")
        if db.udf_missing:
            raise SystemExit(f"cannot measure sys_exec: {db.udf_missing}")
        try:
            root = db.connect()
            _execute(
                root,
                f"CREATE DATABASE {DB} CHARACTER SET utf8mb4",
                f"CREATE FUNCTION sys_exec RETURNS INTEGER SONAME '{UDF_LIBRARY}'",
            )
            conn = db.connect(DB)
            triggers.apply_statements(conn, schema.schema_statements())
            triggers.apply_statements(conn, triggers.trigger_statements("outbox"))
            _execute(
                conn, "INSERT INTO users (companyid, username, extension) VALUES (1, 'u', '201')"
            )
            conn.close()
            print(f"1. one event-producing PBX UPDATE, {args.updates} at {args.rate:.0f}/s:")
            cost = write_cost(db, tmp, args.updates, args.rate, args.rounds)
            print(f"2. PBX write to journal, {args.samples} events:")
            latency = write_to_journal(db, tmp, args.samples)
            print(f"3. idle source, CPU over {args.idle:.0f} s:")
            polling = poll_cost(db, tmp, args.idle)
        finally:
            db.stop()
    machine["load_average_at_end"] = os.getloadavg()
    date = datetime.now(UTC)
    record = {
        "date": date.isoformat(),
        "machine": machine,
        "note": "shared machine: other jobs were running (see load averages)",
        "pbx_write": cost,
        "write_to_journal": latency,
        "poll_cost": polling,
    }
    out = ROOT / "bench" / "results" / f"{date:%Y%m%d-%H%M%S}-{machine['host']}-mysql.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"load average at end: {machine['load_average_at_end']}")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
