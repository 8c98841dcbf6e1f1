"""``wait_until``: poll a condition instead of sleeping, and fail naming what never happened.

Tests against live parts (a service on a port, a fake CRM, the engine's threads) must pass on
a loaded machine: they wait for a state with a generous timeout rather than for a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(
    condition: Callable[[], object], what: str, timeout: float = 30.0, interval: float = 0.05
) -> None:
    """Poll ``condition`` until it is truthy; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
