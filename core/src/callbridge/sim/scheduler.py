"""Run callables at given times on one background thread.

Real-time parts of the simulator (the remote party answering a click-to-call after a few
seconds, the load generator's thousands of answers and hang-ups) schedule work here instead
of starting a thread or a Timer per action, which would not scale to hundreds of calls.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Scheduler:
    """A heap of (due time, action) run in due order by one daemon thread."""

    def __init__(self, name: str = "sim-scheduler") -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._running = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay`` seconds (exceptions are logged, not raised)."""
        with self._cond:
            if self._stopped:
                raise RuntimeError("scheduler is stopped")
            heapq.heappush(
                self._heap, (time.monotonic() + max(delay, 0.0), next(self._seq), action)
            )
            self._cond.notify()

    @property
    def pending(self) -> int:
        """Actions not run yet (including the one running now)."""
        with self._cond:
            return len(self._heap) + self._running

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is pending; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.pending:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, action = heapq.heappop(self._heap)
                self._running += 1
            try:
                action()
            except Exception:
                log.exception("scheduled simulator action failed")
            finally:
                with self._cond:
                    self._running -= 1

    def stop(self) -> None:
        """Drop what is pending and stop the thread."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
