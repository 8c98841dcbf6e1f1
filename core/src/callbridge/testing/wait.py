"""``wait_until``: poll a condition instead of sleeping, and fail naming what never happened.

Tests against live parts (a service on a port, a fake CRM, the engine's threads) must pass on
a loaded machine: they wait for a state with a generous timeout rather than for a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

_T = TypeVar("_T")


def wait_until(
    condition: Callable[[], _T], what: str, timeout: float = 30.0, interval: float = 0.05
) -> _T:
    """Poll ``condition`` until it is truthy; AssertionError naming ``what`` after ``timeout``.

    Returns the truthy value, so a test can wait for a result and use it in one step.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
