"""A full disk under a real ``callbridge serve``: no activity written again and again.

The data directory is a 5 MB tmpfs. The webhook receiver fills it while answering the first
call record, so the CRM has the activity but the engine cannot record that it does. (A
reader takes a snapshot of the engine's state file just before the disk fills, as a backup
would, and holds it: SQLite then cannot restart its WAL in the space it already has, so every
write needs new space. The reader first checkpoints and truncates the WAL, since SQLite
restarts a WAL in place: frames it kept from before would otherwise take the next writes, and
whether a write right after the disk filled needs new space would be down to the file's
history.) The
delivery must back off like a failed one, deliveries pause while the journal cannot be
written (one log line, not one per attempt), and once there is space again the delivery is
finished with the same idempotency key: the receiver keeps one activity.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fault_support import Receiver, fill, tiny_disk
from server_support import INGRESS_TOKEN, wait_until
from service_support import Service, call_events

from callbridge.journal.base import DeliveryState
from callbridge.journal.sqlite import SqliteJournal

pytestmark = pytest.mark.slow

#: Seconds the disk stays full: long enough for a loop to show (it ran 76 times in 7 s).
FULL_FOR = 6.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


def test_full_disk_holds_deliveries_back_and_logs_once(tmp_path: Path, receiver: Receiver) -> None:
    with tiny_disk(tmp_path / "data") as data:
        service = Service(
            data,
            **receiver.env(),
            CALLBRIDGE_DISPATCH__BACKOFF_INITIAL="1",
            CALLBRIDGE_DISPATCH__BACKOFF_MAX="2",
        )
        service.log = tmp_path / "serve.log"  # not on the disk that fills up
        filled: list[Path] = []

        reader = sqlite3.connect(
            data / "journal-state.sqlite3", isolation_level=None, check_same_thread=False
        )
        reader.execute("PRAGMA busy_timeout = 5000")

        def fill_once(key: str) -> None:
            if not filled:
                # An empty WAL file first: otherwise the engine's next frames may land in
                # space the file kept from before (SQLite restarts a WAL in place).
                wait_until(
                    lambda: reader.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0,
                    "an empty WAL",
                    30,
                )
                reader.execute("BEGIN")
                reader.execute("SELECT COUNT(*) FROM deliveries").fetchone()
                filled.append(fill(data))

        receiver.on_record = fill_once
        service.start()
        try:
            with httpx.Client(base_url=service.url, timeout=10) as client:
                for params in call_events("FD000001"):
                    response = client.get("/pbx/events", params={**params, "token": INGRESS_TOKEN})
                    assert response.status_code == 200, response.text
            # One call: its key is ``callbridge:1:FD000001@<start time>:webhook``.
            wait_until(lambda: receiver.total() >= 1, "the first call record", 60)
            time.sleep(FULL_FOR)
            sent_while_full = receiver.total()
            output = service.output()
            # Backoff (1-2 s) plus the pause: at most a few tries, not one per poll.
            assert sent_while_full <= 3, (sent_while_full, output[-3000:])
            assert output.count("cannot be written") == 1, output[-3000:]
            assert output.count("Traceback") <= 1, output[-3000:]  # the engine's, once

            filled[0].unlink()
            reader.execute("COMMIT")
            wait_until(lambda: "deliveries resume" in service.output(), "deliveries resume", 60)
            journal = SqliteJournal(data / "journal.sqlite3")
            try:
                wait_until(
                    lambda: (
                        [d.state for d in journal.list_deliveries(limit=10)] == [DeliveryState.DONE]
                    ),
                    "the delivery done",
                    60,
                )
            finally:
                journal.close()
            # Tried again with the same key: the receiver deduplicates, one activity is kept.
            assert receiver.total() <= sent_while_full + 1
            (key,) = receiver.stored
            assert key.startswith("callbridge:1:FD000001@") and key.endswith(":webhook"), key
            wait_until(
                lambda: httpx.get(f"{service.url}/readyz", timeout=10).status_code == 200,
                "ready again",
                30,
            )
        finally:
            reader.close()
            service.kill()


def test_full_disk_503s_are_one_log_line(tmp_path: Path, receiver: Receiver) -> None:
    """Every refused event is a 503 (the PBX retries); the log says so once, not per request."""
    with tiny_disk(tmp_path / "data") as data:
        service = Service(data, **receiver.env())
        service.log = tmp_path / "serve.log"
        service.start()
        try:
            fill(data)
            statuses: list[int] = []
            with httpx.Client(base_url=service.url, timeout=10) as client:
                for n in range(400):
                    for params in call_events(f"FE{n:06X}"):
                        response = client.get(
                            "/pbx/events", params={**params, "token": INGRESS_TOKEN}
                        )
                        statuses.append(response.status_code)
            assert set(statuses) <= {200, 503}
            assert statuses.count(503) >= 10, statuses.count(503)
            output = service.output()
            assert output.count("answering 503") == 1, output[-3000:]
            assert "free space on the disk holding" in output
            assert output.count("Traceback") <= 2, output[-3000:]  # the ingress's, the engine's
        finally:
            service.kill()
