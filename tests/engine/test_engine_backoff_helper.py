"""``engine.backoff.Backoff``: the one capped exponential backoff of the engine."""

from __future__ import annotations

import threading
import time

import pytest

from callbridge.engine.backoff import Backoff, Stopped


def test_the_curve_doubles_up_to_the_cap_and_jitter_stays_within_it() -> None:
    backoff = Backoff(initial=0.2, cap=1.0)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    for attempt in range(1, 8):
        assert all(0.2 <= backoff.jittered(attempt) <= backoff.delay(attempt) for _ in range(50))


def test_run_retries_until_the_work_succeeds_and_reports_each_failure() -> None:
    failures: list[tuple[int, float]] = []
    calls = 0

    def work() -> None:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise OSError("disk I/O error")

    attempts = Backoff(initial=0.01, cap=0.02).run(
        work, stop=threading.Event(), on_failure=lambda exc, n, wait: failures.append((n, wait))
    )
    assert attempts == 4
    assert failures == [(1, 0.01), (2, 0.02), (3, 0.02)]


def test_run_gives_up_with_the_last_error_after_its_time() -> None:
    started = time.monotonic()
    with pytest.raises(OSError, match="still failing"):
        Backoff(initial=0.01, cap=0.05).run(
            lambda: (_ for _ in ()).throw(OSError("still failing")),
            stop=threading.Event(),
            give_up_after=0.2,
        )
    assert 0.2 <= time.monotonic() - started < 5


def test_run_stops_waiting_when_told_to_stop() -> None:
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        Backoff(initial=10.0, cap=10.0).run(
            lambda: (_ for _ in ()).throw(OSError("down")), stop=stop
        )
    assert time.monotonic() - started < 5  # not the 10 s wait
