"""kill -9 of ``callbridge serve`` during a burst: after a restart every acknowledged event is
in the journal exactly once, and every call whose end was acknowledged is logged exactly once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from server_support import INGRESS_TOKEN, wait_until
from service_support import Service, call_events, free_port

from callbridge.journal.base import DeliveryState
from callbridge.journal.sqlite import SqliteJournal
from callbridge.plugins.builtin.directory import DirectoryPlugin

pytestmark = pytest.mark.slow

THREADS = 6
#: Acknowledged events before the kill: enough to be mid-burst, few enough to stay quick.
KILL_AFTER = 150


class Burst:
    """Threads each sending whole calls (16, 18, 21) until a request fails."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(THREADS)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def _run(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            for n in range(100_000):
                for params in call_events(f"{worker + 1:02X}{n:06X}"):
                    if self._stop.is_set():
                        return
                    try:
                        response = client.get(
                            "/pbx/events", params={**params, "token": INGRESS_TOKEN}
                        )
                    except httpx.HTTPError:
                        return  # the server is gone; this event is not acknowledged
                    if response.status_code != 200:
                        return
                    with self._lock:
                        self.acked.append((params["call_id"], params["ssn_event"]))

    def join(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def all_events(journal: SqliteJournal) -> tuple[list[tuple[str, str]], int]:
    """(call id, ssn_event) of every stored event, and the last sequence number."""
    found: list[tuple[str, str]] = []
    seq = 0
    while True:
        page = journal.events_after(seq)
        if not page:
            return found, seq
        found += [(s.raw["call_id"], s.raw["ssn_event"]) for s in page]
        seq = page[-1].seq


def test_kill_9_mid_burst_loses_nothing_and_logs_once(tmp_path: Path) -> None:
    service = Service(tmp_path / "data").start()
    burst = Burst(service.url)
    try:
        burst.start()
        wait_until(lambda: burst.count() >= KILL_AFTER, "the burst to get going", 60)
        service.kill()
    finally:
        burst.join()
        service.kill()
    acked = list(burst.acked)
    ended = {call for call, ssn in acked if ssn == "21"}
    assert ended, "no call finished before the kill"

    service.port = free_port()
    service.start()
    try:
        directory = DirectoryPlugin.open(service.data_dir / "directory.sqlite3")
        wait_until(
            lambda: len(directory.list_activities(100_000)) >= len(ended),
            "the activities of the acknowledged calls",
            90,
        )

        def idle() -> bool:
            result = service.cli("deliveries", "list", "--json", "--limit", "100000")
            assert result.returncode == 0, result.stderr
            return all(d["state"] == "done" for d in json.loads(result.stdout))

        wait_until(idle, "every delivery done", 90)
    finally:
        assert service.stop() == 0, service.output()

    journal = SqliteJournal(service.data_dir / "journal.sqlite3")
    try:
        stored, last_seq = all_events(journal)
        counts = Counter(stored)
        assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1]
        missing = [key for key in acked if counts[key] != 1]
        assert missing == [], f"acknowledged but not in the journal: {missing[:10]}"
        assert journal.get_cursor("dispatcher") == last_seq  # all handled
        # Every call whose end is in the journal (acknowledged or not) is finished.
        journaled_ends = {call for call, ssn in stored if ssn == "21"}
        assert ended <= journaled_ends
        deliveries = journal.list_deliveries(limit=100_000)
        assert {d.state for d in deliveries} == {DeliveryState.DONE}
    finally:
        journal.close()

    print(f"acknowledged {len(acked)} events, {len(ended)} ended calls; stored {len(stored)}")
    per_call = Counter(a.call_key.rsplit(":", 1)[-1] for a in directory.list_activities(100_000))
    assert max(per_call.values()) == 1, [k for k, v in per_call.items() if v > 1]
    assert ended <= set(per_call), sorted(ended - set(per_call))[:10]
    assert set(per_call) == journaled_ends
