"""Capped exponential backoff, the engine's one way to wait before trying again.

Three things in the engine try again after a failure: a lane re-runs an event whose effects
the journal could not take (``lanes``), a dead letter is written until the journal takes it
(``lanes``), and paused deliveries probe the journal until it is writable (``deliveries``).
Delivery schedules (``retry.RetryPolicy``) use the same curve with full jitter. All of them
go through ``Backoff``, so the curve is written once; the loops run on tenacity's
``Retrying`` with a sleep that ends early when the engine stops.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import (
    RetryCallState,
    Retrying,
    stop_after_delay,
    stop_when_event_set,
    wait_exponential,
)
from tenacity.stop import stop_base

#: What ``Backoff.run`` tells about a failed attempt: the error, the attempt number (1-based)
#: and the seconds it waits before the next one.
OnFailure = Callable[[BaseException, int, float], None]


class Stopped(Exception):
    """The stop event was set while waiting: the work was not done."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits of ``initial * 2**(n-1)`` seconds after failure ``n``, never over ``cap``."""

    initial: float
    cap: float

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), no jitter."""
        return float(min(self.cap, self.initial * 2 ** (max(1, attempt) - 1)))

    def jittered(self, attempt: int) -> float:
        """``delay`` with full jitter, never under ``initial``: spreads retries made together."""
        return min(self.cap, max(self.initial, random.uniform(0, self.delay(attempt))))

    def run(
        self,
        work: Callable[[], None],
        *,
        stop: threading.Event,
        give_up_after: float | None = None,
        on_failure: OnFailure | None = None,
    ) -> int:
        """Run ``work`` until it returns; return how many attempts it took.

        Raises ``Stopped`` when ``stop`` is set (the work is left undone), and the last
        error once ``give_up_after`` seconds have passed since the first attempt.
        """
        stops: stop_base = stop_when_event_set(stop)
        if give_up_after is not None:
            stops = stops | stop_after_delay(give_up_after)

        def sleep(seconds: float) -> None:
            if stop.wait(seconds):
                raise Stopped

        def before_sleep(state: RetryCallState) -> None:
            if on_failure is not None and state.outcome is not None:
                error = state.outcome.exception()
                wait = state.next_action.sleep if state.next_action is not None else 0.0
                if error is not None:
                    on_failure(error, state.attempt_number, wait)

        retrying = Retrying(
            sleep=sleep,
            stop=stops,
            wait=wait_exponential(multiplier=self.initial, max=self.cap),
            before_sleep=before_sleep,
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    work()
        except Stopped:
            raise
        except Exception as exc:
            if stop.is_set():
                raise Stopped from exc
            raise
        return attempts
