"""kill -9 mid-burst, restart: every call logged, none completed twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from engine_helpers import incoming, local_hangup

from callbridge.journal import DeliveryState
from callbridge.journal.sqlite import SqliteJournal
from callbridge.testing import wait_until
from callbridge.voispeed.events import parse_event

WORKER = Path(__file__).with_name("crash_worker.py")
CALLS = 80


def _spawn(data_dir: Path, records: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(data_dir), str(records)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=WORKER.parent,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"worker did not start: {line!r}"
    return proc


def _count(path: Path, sql: str) -> int:
    if not path.exists():
        return 0
    conn = sqlite3.connect(path, timeout=30)
    try:
        return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


@pytest.mark.slow
def test_kill_mid_burst_then_restart_logs_every_call_exactly_once(tmp_path: Path) -> None:
    records = tmp_path / "crm.sqlite3"
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    proc = _spawn(tmp_path, records)
    try:
        calls = [f"{i:08X}" for i in range(1, CALLS + 1)]
        for call_id in calls:
            ext = str(200 + int(call_id, 16) % 7)
            for params in (incoming(call_id, ext=ext), local_hangup(call_id, ext=ext)):
                journal.append_event(parse_event(params), raw=params)
            if call_id == calls[CALLS // 2]:
                # Mid-burst: some calls logged, some in flight, some not yet read.
                wait_until(
                    lambda: _count(records, "SELECT COUNT(*) FROM records") >= 10,
                    "the first activities",
                    timeout=60,
                )
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        logged_before = _count(records, "SELECT COUNT(*) FROM records")
        assert logged_before < CALLS

        proc = _spawn(tmp_path, records)

        def all_done() -> bool:
            done = journal.list_deliveries(state=DeliveryState.DONE, limit=10_000)
            return len(done) == CALLS

        wait_until(all_done, "every delivery done after the restart", timeout=120)
    finally:
        proc.kill()
        proc.wait(30)

    deliveries = journal.list_deliveries(limit=10_000)
    journal.close()
    assert len(deliveries) == CALLS
    assert {d.call_key for d in deliveries} == {f"1:{c}" for c in calls}
    assert all(d.state is DeliveryState.DONE for d in deliveries)
    # What reached "the CRM": one record per call, each key once.
    conn = sqlite3.connect(records)
    rows = conn.execute("SELECT key, COUNT(*) FROM records GROUP BY key").fetchall()
    attempts = conn.execute("SELECT COUNT(*), COUNT(DISTINCT pid) FROM attempts").fetchone()
    conn.close()
    # Keys are "callbridge:<call key>@<ring time>:recorder": one per call.
    assert sorted(k.split("@")[0] for k, _ in rows) == sorted(f"callbridge:1:{c}" for c in calls)
    assert all(k.endswith(":recorder") for k, _ in rows)
    assert all(n == 1 for _, n in rows)
    assert attempts[0] >= CALLS
    assert attempts[1] == 2  # both runs did part of the work
