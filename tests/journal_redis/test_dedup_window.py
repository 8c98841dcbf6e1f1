"""The journal's dedup window, on both backends: a repeat is the same event *within* the window.

VOIspeed reuses user call ids (its counters restart; the monitor tables' AUTO_INCREMENT ids
restart at max + 1 after a MySQL restart), so the same parameters hours apart are a new call,
while a trigger retry or PBX re-send seconds later is the same event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis_support import RedisServer

from callbridge.errors import ConfigurationError
from callbridge.journal.base import DEFAULT_DEDUP_WINDOW, Journal
from callbridge.journal.factory import open_journal
from callbridge.journal.redis import RedisJournal
from callbridge.journal.sqlite import SqliteJournal
from callbridge.settings import Settings, load_settings
from callbridge.voispeed.events import parse_event

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
PARAMS = {
    "ssn_event": "16",
    "call_id": "00000005",
    "number": "0612345678",
    "ext": "201",
    "company_id": "1",
    "identity": "Mario|Rossi|Sales|0|0",
}

Opener = Callable[[float], Journal]


@pytest.fixture(params=["sqlite", "redis"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens journals with a given window on one storage; closes them all afterwards."""
    opened: list[Journal] = []
    if request.param == "sqlite":
        path = tmp_path / "journal.sqlite3"

        def make(window: float) -> Journal:
            return SqliteJournal(path, dedup_window=window)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.unique_url()

        def make(window: float) -> Journal:
            return RedisJournal(url, dedup_window=window)

    def open_one(window: float = DEFAULT_DEDUP_WINDOW) -> Journal:
        journal = make(window)
        opened.append(journal)
        return journal

    yield open_one
    for journal in opened:
        journal.close()


def _append(journal: Journal, at: datetime, params: dict[str, str] = PARAMS) -> tuple[int, bool]:
    result = journal.append_event(parse_event(params), raw=params, received_at=at)
    return result.seq, result.duplicate


def test_the_same_event_within_the_window_is_a_repeat(opener: Opener) -> None:
    journal = opener(DEFAULT_DEDUP_WINDOW)
    first, dup = _append(journal, T0)
    assert not dup
    # A trigger retry a second later, a PBX re-send 59 minutes later, one received "earlier".
    for offset in (1, 59 * 60, -30):
        assert _append(journal, T0 + timedelta(seconds=offset)) == (first, True)
    assert [e.seq for e in journal.events_after(0)] == [first]


def test_the_same_event_after_the_window_is_a_new_event(opener: Opener) -> None:
    journal = opener(DEFAULT_DEDUP_WINDOW)
    first, _ = _append(journal, T0)
    hour_later = T0 + timedelta(seconds=DEFAULT_DEDUP_WINDOW)
    second, dup = _append(journal, hour_later)
    assert not dup
    assert second > first
    # The newest event now holds the key: its own repeats are repeats of it...
    assert _append(journal, hour_later + timedelta(seconds=5)) == (second, True)
    # ...and a third call with the same id two hours on is new again.
    third, dup = _append(journal, T0 + timedelta(hours=2, seconds=1))
    assert (dup, third > second) == (False, True)
    stored = journal.events_after(0)
    assert [e.seq for e in stored] == [first, second, third]
    assert [e.received_at for e in stored] == [T0, hour_later, T0 + timedelta(hours=2, seconds=1)]
    assert all(e.event == parse_event(PARAMS) for e in stored)
    # The latest event carries the event's own dedup key (the contract readers rely on).
    assert stored[-1].dedup_key == parse_event(PARAMS).dedup_key


def test_a_tiny_window_with_real_time(opener: Opener) -> None:
    journal = opener(0.001)
    first, _ = _append(journal, datetime.now(UTC))
    threading.Event().wait(0.01)  # more than the window: any later real time is outside
    second, dup = _append(journal, datetime.now(UTC))
    assert not dup and second > first


def test_other_events_are_never_affected(opener: Opener) -> None:
    journal = opener(60.0)
    a, _ = _append(journal, T0)
    b, dup = _append(journal, T0, {**PARAMS, "call_id": "00000006"})
    assert not dup and b > a
    # The window counts per key: b's repeat within its window is a repeat, a's later one new.
    assert _append(journal, T0 + timedelta(seconds=59), {**PARAMS, "call_id": "00000006"}) == (
        b,
        True,
    )
    c, dup = _append(journal, T0 + timedelta(seconds=61))
    assert not dup and c > b


def test_the_window_holds_across_reopen_and_for_concurrent_appends(opener: Opener) -> None:
    journal = opener(DEFAULT_DEDUP_WINDOW)
    first, _ = _append(journal, T0)
    journal.close()
    again = opener(DEFAULT_DEDUP_WINDOW)
    later = T0 + timedelta(hours=3)
    results: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def append() -> None:
        got = _append(again, later)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=append) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Eight racing copies of the reused call's event: exactly one new event, seven repeats.
    new = [seq for seq, dup in results if not dup]
    assert len(new) == 1 and new[0] > first
    assert sorted(seq for seq, _ in results) == [new[0]] * 8
    assert [e.seq for e in again.events_after(0)] == [first, new[0]]


@pytest.mark.parametrize("window", [0.0, -1.0, float("nan")])
def test_a_window_that_is_not_positive_is_refused(tmp_path: Path, window: float) -> None:
    with pytest.raises(ValueError, match="dedup_window"):
        SqliteJournal(tmp_path / "j.sqlite3", dedup_window=window)


def test_the_setting_reaches_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBRIDGE_DEDUP_WINDOW", "0.5")
    settings = load_settings(data_dir=tmp_path)
    assert settings.dedup_window == 0.5
    journal = open_journal(settings)
    try:
        first, _ = _append(journal, T0)
        assert _append(journal, T0 + timedelta(seconds=0.4)) == (first, True)
        assert _append(journal, T0 + timedelta(seconds=0.6))[1] is False
    finally:
        journal.close()
    monkeypatch.delenv("CALLBRIDGE_DEDUP_WINDOW")
    assert Settings(data_dir=tmp_path).dedup_window == DEFAULT_DEDUP_WINDOW
    monkeypatch.setenv("CALLBRIDGE_DEDUP_WINDOW", "0")
    with pytest.raises(ConfigurationError, match="CALLBRIDGE_DEDUP_WINDOW"):
        load_settings(data_dir=tmp_path)
