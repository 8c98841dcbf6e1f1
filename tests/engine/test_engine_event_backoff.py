"""A lane keeps retrying an event whose effects fail (a journal outage) for
``event_retry_max_age`` with capped backoff, holds the cursor below it meanwhile, lets the
other lanes go on, and only then keeps it as a dead letter and moves on.

Real engine, tracker and SQLite journal; the journal's ``enqueue_delivery`` fails for chosen
calls, as a locked or full disk would.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import Crm, incoming, local_hangup, make_settings

from callbridge import metrics
from callbridge.engine import lanes
from callbridge.engine.backoff import Backoff
from callbridge.engine.dispatcher import CURSOR_NAME
from callbridge.engine.engine import Engine
from callbridge.journal.base import Delivery
from callbridge.journal.sqlite import SqliteJournal
from callbridge.plugins.manager import load_plugins
from callbridge.testing import wait_until


class OutageJournal(SqliteJournal):
    """Fails ``enqueue_delivery`` for calls in ``down`` (and the next ``failures`` of any)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.down: set[str] = set()
        self.failures = 0
        self.tries = 0
        self.lock = threading.Lock()

    def enqueue_delivery(
        self, *, call_key: str, plugin: str, action: str, payload: dict[str, Any]
    ) -> Delivery:
        with self.lock:
            self.tries += 1
            if call_key in self.down or self.failures > 0:
                self.failures = max(0, self.failures - 1)
                raise sqlite3.OperationalError("disk I/O error")
        return super().enqueue_delivery(
            call_key=call_key, plugin=plugin, action=action, payload=payload
        )


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start the backoff at 10 ms (the cap and the max age are the real mechanism)."""
    monkeypatch.setattr(lanes, "EVENT_BACKOFF", Backoff(initial=0.01, cap=0.1))


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    started: list[Engine] = []
    yield started
    for engine in started:
        engine.stop()
        engine.journal.close()


def _engine(tmp_path: Path, engines: list[Engine], crm: Crm, **dispatch: Any) -> Engine:
    settings = make_settings(tmp_path, **dispatch)
    plugins = load_plugins(settings, entry_points=False, builtins=False, extra=[crm])
    engine = Engine(
        settings,
        journal=OutageJournal(tmp_path / "journal.sqlite3"),
        plugins=plugins,
        tick_interval=0.05,
        poll_interval=0.01,
    )
    engines.append(engine)
    engine.start()
    return engine


def _journal(engine: Engine) -> OutageJournal:
    assert isinstance(engine.journal, OutageJournal)
    return engine.journal


def _other_lane_call(engine: Engine, call_id: str) -> str:
    """A call id whose events go to another lane than ``call_id``'s."""
    lane = engine.dispatcher.lanes.index("1", call_id)
    for n in range(2, 1000):
        candidate = f"{n:08X}"
        if engine.dispatcher.lanes.index("1", candidate) != lane:
            return candidate
    raise AssertionError("no other lane")


def test_an_outage_longer_than_a_few_tries_loses_nothing(
    tmp_path: Path, engines: list[Engine]
) -> None:
    crm = Crm()
    engine = _engine(tmp_path, engines, crm)
    journal = _journal(engine)
    journal.failures = 8  # more tries than the old limit of 3

    engine.ingest(incoming("00000001"))
    engine.ingest(local_hangup("00000001"))

    wait_until(lambda: "callbridge:1:00000001:crm" in crm.by_call, "the call to be logged")
    assert journal.tries > 8
    assert journal.list_rejected() == []


def test_the_cursor_waits_below_a_failing_event_while_other_lanes_go_on(
    tmp_path: Path, engines: list[Engine]
) -> None:
    crm = Crm()
    engine = _engine(tmp_path, engines, crm)
    journal = _journal(engine)
    journal.down.add("1:00000001")
    other = _other_lane_call(engine, "00000001")

    engine.ingest(incoming("00000001"))
    stuck = engine.ingest(local_hangup("00000001")).seq
    engine.ingest(incoming(other))
    last = engine.ingest(local_hangup(other)).seq

    wait_until(lambda: f"callbridge:1:{other}:crm" in crm.by_call, "the other lane's call")
    wait_until(lambda: journal.tries >= 5, "several tries of the failing event")
    assert journal.get_cursor(CURSOR_NAME) < stuck

    journal.down.clear()  # the outage ends: the same event now goes through
    wait_until(lambda: "callbridge:1:00000001:crm" in crm.by_call, "the retried call")
    wait_until(lambda: journal.get_cursor(CURSOR_NAME) == last, "the cursor to catch up")
    assert journal.list_rejected() == []


def _failed_count() -> float:
    value = metrics.REGISTRY.get_sample_value("callbridge_events_failed_total", {"item": "event"})
    return value or 0.0


def test_past_the_max_age_the_event_is_a_dead_letter_and_the_cursor_moves_on(
    tmp_path: Path, engines: list[Engine]
) -> None:
    crm = Crm()
    engine = _engine(tmp_path, engines, crm, event_retry_max_age=0.3)
    journal = _journal(engine)
    journal.down.add("1:00000001")
    before = _failed_count()

    engine.ingest(incoming("00000001"))
    dead = engine.ingest(local_hangup("00000001")).seq
    engine.ingest(incoming("00000002"))
    last = engine.ingest(local_hangup("00000002")).seq

    wait_until(lambda: journal.get_cursor(CURSOR_NAME) == last, "the cursor to pass it")
    (letter,) = [r for r in journal.list_rejected() if r.source == "dispatcher"]
    assert "disk I/O error" in letter.reason
    assert f'"seq":{dead}' in letter.raw
    assert _failed_count() == before + 1
    assert "callbridge:1:00000002:crm" in crm.by_call
    assert "callbridge:1:00000001:crm" not in crm.by_call


class SlowDueJournal(SqliteJournal):
    """``due_deliveries`` blocks (once armed) until ``gate`` opens: a slow journal read.

    It then answers as of the time it returns, as a slow read would.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.armed = threading.Event()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def due_deliveries(self, now: Any, limit: int = 100, *, plugin: str | None = None) -> Any:
        if self.armed.is_set() and threading.current_thread().name == "deliveries":
            self.entered.set()
            self.gate.wait(30)
            now = datetime.now(UTC)
        return super().due_deliveries(now, limit, plugin=plugin)


def test_stop_leaves_no_delivery_pool_for_a_late_delivery_thread(
    tmp_path: Path, engines: list[Engine]
) -> None:
    crm = Crm()
    settings = make_settings(tmp_path)
    plugins = load_plugins(settings, entry_points=False, builtins=False, extra=[crm])
    journal = SlowDueJournal(tmp_path / "journal.sqlite3")
    engine = Engine(settings, journal=journal, plugins=plugins, poll_interval=0.01)
    engines.append(engine)
    engine.start()
    journal.armed.set()
    wait_until(journal.entered.is_set, "the delivery thread to block in its read")
    record = {"call": {"key": "1:00000009"}}  # never valid: only scheduling matters here
    journal.enqueue_delivery(call_key="1:00000009", plugin="crm", action="log_call", payload=record)

    dispatcher = engine.dispatcher
    dispatcher.stop(timeout=0.2)  # the delivery thread outlives its join
    journal.gate.set()
    for thread in dispatcher._threads:
        thread.join(30)
        assert not thread.is_alive()

    assert all(pool._shutdown for pool in dispatcher.deliveries.pools.values())
    delivery = journal.get_delivery(1)
    assert delivery is not None
    assert delivery.attempts == 0  # nothing ran after stop
