"""A delivery whose outcome the journal cannot record: held back, deliveries paused, one line.

Real engine, tracker and SQLite journal; the journal's delivery writes (and its probe write)
fail while ``full`` is set, as on a full disk, after ``log_call`` succeeded. Before, the
delivery stayed due and ran again at once, in a loop (76 requests in 7 s on a real disk).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import Crm, incoming, local_hangup, make_settings

from callbridge.engine.engine import Engine
from callbridge.journal.sqlite import SqliteJournal
from callbridge.plugins.manager import load_plugins
from callbridge.testing import wait_until


class FullJournal(SqliteJournal):
    """Delivery outcomes and ``check_writable`` fail while ``full`` is set."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.full = threading.Event()
        self.probes = 0

    def _refuse(self) -> None:
        if self.full.is_set():
            raise sqlite3.OperationalError("database or disk is full")

    def complete_delivery(self, delivery_id: int, result: Any) -> None:
        self._refuse()
        super().complete_delivery(delivery_id, result)

    def fail_delivery(self, delivery_id: int, **kwargs: Any) -> None:
        self._refuse()
        super().fail_delivery(delivery_id, **kwargs)

    def check_writable(self) -> None:
        self.probes += 1
        self._refuse()
        super().check_writable()


def test_unrecorded_delivery_backs_off_and_pauses_deliveries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crm = Crm()
    settings = make_settings(tmp_path, backoff_initial=0.05, backoff_max=0.1)
    plugins = load_plugins(settings, entry_points=False, builtins=False, extra=[crm])
    journal = FullJournal(tmp_path / "journal.sqlite3")
    engine = Engine(
        settings, journal=journal, plugins=plugins, tick_interval=0.05, poll_interval=0.01
    )
    engine.start()
    try:
        journal.full.set()
        with caplog.at_level(logging.INFO, logger="callbridge.engine.dispatcher"):
            engine.ingest(incoming("00000001"))
            engine.ingest(local_hangup("00000001"))
            wait_until(lambda: crm.attempts >= 1, "the first log_call", timeout=20)
            time.sleep(3)  # the old loop ran log_call dozens of times in this while
            assert crm.attempts == 1  # paused: no delivery runs while the journal is full
            assert 1 <= journal.probes <= 3  # probed at 1 s, then 2 s: not in a loop
            journal.full.clear()
            wait_until(lambda: engine.wait_idle(0.1), "the delivery recorded", timeout=20)
        (delivery,) = journal.list_deliveries(limit=10)
        assert delivery.state.value == "done"
        assert crm.attempts == 2  # run once more, with the same idempotency key
        assert len(crm.logged) == 1  # one activity: the retry found it under the same key
        assert list(crm.by_call) == ["callbridge:1:00000001:crm"]
        messages = [r.getMessage() for r in caplog.records]
        assert sum("cannot be written" in m for m in messages) == 1, messages
        assert sum("deliveries resume" in m for m in messages) == 1, messages
    finally:
        engine.stop()
        journal.close()
