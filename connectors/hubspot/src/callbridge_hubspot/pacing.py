"""A thread-safe token bucket that paces HubSpot searches.

HubSpot's CRM search endpoints allow only a few requests per second per account, far fewer
than the other APIs; exceeding them costs a 429 and, repeated, a longer block. Lookups come
from several worker threads at once, so the bucket hands out *reservations* under a lock
(GCRA: one theoretical arrival time), then each thread sleeps outside the lock until its
slot. Granted times are recorded so tests can check the schedule instead of a wall clock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class TokenBucket:
    """At most ``burst`` requests at once and ``rate`` per second on average, ever."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        history: int = 1024,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = clock()  # theoretical arrival time of the next request
        self._granted: deque[float] = deque(maxlen=history)

    def reserve(self) -> float:
        """Book the next slot and return how many seconds to wait for it."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            start = max(now, tat - self._tolerance)
            self._tat = tat + self._interval
            self._granted.append(start)
            return start - now

    def acquire(self) -> float:
        """Wait for a slot; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Let nothing through for ``seconds`` (after a 429: back off for everyone)."""
        with self._lock:
            self._tat = max(self._tat, self._clock() + seconds + self._tolerance)

    def schedule(self) -> list[float]:
        """The granted start times (clock values), oldest first."""
        with self._lock:
            return list(self._granted)

    @staticmethod
    def max_in_window(times: list[float], window: float) -> int:
        """The most granted times inside any half-open window ``[t, t + window)``."""
        ordered = sorted(times)
        best, lo = 0, 0
        for hi, t in enumerate(ordered):
            while ordered[lo] <= t - window:
                lo += 1
            best = max(best, hi - lo + 1)
        return best
