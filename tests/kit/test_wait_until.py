"""``wait_until`` returns once the condition holds and fails naming what never happened."""

from __future__ import annotations

import threading

import pytest

from callbridge.testing import wait_until


def test_returns_once_the_condition_holds() -> None:
    done = threading.Event()
    threading.Thread(target=done.set, daemon=True).start()
    wait_until(done.is_set, "the other thread")
    assert done.is_set()


def test_a_condition_that_never_holds_fails_naming_it() -> None:
    with pytest.raises(AssertionError, match="after 0s waiting for the moon"):
        wait_until(lambda: False, "the moon", timeout=0.2, interval=0.01)
