"""A lane retries an event whose effects failed half-way: the retry must finish the job.

The tracker takes an event it has already seen as a repeat and reports nothing. So a retry
that fed the event to the tracker again would find nothing left to do, and whatever the
failed attempt had not written yet (the call's deliveries) would be lost until a restart.
These tests fail one journal write once, with the real engine, tracker and SQLite journal.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import Crm, incoming, local_hangup, make_settings
from engine_helpers import answered as answered_event

from callbridge.engine.engine import Engine
from callbridge.journal import DeliveryState
from callbridge.journal.base import Delivery
from callbridge.journal.sqlite import SqliteJournal
from callbridge.models import Call
from callbridge.plugins.manager import load_plugins


class FlakyJournal(SqliteJournal):
    """A real SQLite journal whose chosen write fails once, as a locked database would."""

    def __init__(self, path: Path, *, fail: str) -> None:
        super().__init__(path)
        self._fail = fail
        self._failed = threading.Event()

    def _trip(self, name: str) -> None:
        if name == self._fail and not self._failed.is_set():
            self._failed.set()
            raise sqlite3.OperationalError("database is locked")

    def enqueue_delivery(
        self, *, call_key: str, plugin: str, action: str, payload: dict[str, Any]
    ) -> Delivery:
        self._trip("enqueue_delivery")
        return super().enqueue_delivery(
            call_key=call_key, plugin=plugin, action=action, payload=payload
        )

    def save_call(self, call: Call, *, settled: bool = False) -> None:
        if call.state.value == "answered":
            self._trip("save_answered")
        super().save_call(call, settled=settled)


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    started: list[Engine] = []
    yield started
    for engine in started:
        engine.stop()
        engine.journal.close()


def _engine(tmp_path: Path, engines: list[Engine], crm: Crm, fail: str) -> Engine:
    settings = make_settings(tmp_path)
    plugins = load_plugins(settings, entry_points=False, builtins=False, extra=[crm])
    journal = FlakyJournal(tmp_path / "journal.sqlite3", fail=fail)
    engine = Engine(
        settings, journal=journal, plugins=plugins, tick_interval=0.05, poll_interval=0.01
    )
    engines.append(engine)
    engine.start()
    return engine


def test_a_failed_delivery_enqueue_is_retried_not_lost(
    tmp_path: Path, engines: list[Engine]
) -> None:
    crm = Crm()
    engine = _engine(tmp_path, engines, crm, fail="enqueue_delivery")

    engine.ingest(incoming("00000001"))
    engine.ingest(local_hangup("00000001"))
    assert engine.wait_idle(30)

    assert isinstance(engine.journal, FlakyJournal)
    assert engine.journal._failed.is_set()  # the fault did happen
    deliveries = engine.journal.list_deliveries()
    assert [(d.call_key, d.state) for d in deliveries] == [("1:00000001", DeliveryState.DONE)]
    assert list(crm.by_call) == ["callbridge:1:00000001:crm"]
    assert engine.journal.list_calls(open_only=True) == []


def test_a_failed_answer_save_is_retried_and_the_call_still_logged_answered(
    tmp_path: Path, engines: list[Engine]
) -> None:
    crm = Crm()
    engine = _engine(tmp_path, engines, crm, fail="save_answered")

    engine.ingest(incoming("00000002"))
    engine.ingest(answered_event("00000002"))
    assert engine.wait_idle(30)
    saved = engine.journal.get_call("1:00000002")
    assert saved is not None
    assert saved.state.value == "answered"  # the retried answer was saved after all

    engine.ingest(local_hangup("00000002"))
    assert engine.wait_idle(30)
    record = crm.by_call["callbridge:1:00000002:crm"]
    assert record.call.outcome is not None
    assert record.call.outcome.value == "answered"
