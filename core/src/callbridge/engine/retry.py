"""When to try a failed delivery again, and when to give up.

Backoff is exponential with full jitter (``backoff.Backoff.jittered``): attempt n
waits a random time up to ``backoff_initial * 2**(n-1)``, capped at ``backoff_max`` and never
under ``backoff_initial``. Jitter spreads the retries of many calls that failed together (a
CRM outage) so they do not hammer the CRM in lock-step when it comes back. A plugin's
``RetryLater(retry_after=...)`` hint is a floor: we never retry sooner than the CRM asked.

A delivery gives up (goes dead, keeping its last error) after ``max_attempts`` attempts, or
when the next attempt would fall beyond ``max_age`` seconds after it was created (or last
retried by hand); a ``PermanentError`` makes it dead at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..settings import DispatchSettings
from .backoff import Backoff


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The delivery retry rules, from ``DispatchSettings``."""

    max_attempts: int
    max_age: float
    backoff_initial: float
    backoff_max: float

    @classmethod
    def from_settings(cls, settings: DispatchSettings) -> RetryPolicy:
        """The policy the settings describe."""
        return cls(
            max_attempts=settings.max_attempts,
            max_age=settings.max_age,
            backoff_initial=settings.backoff_initial,
            backoff_max=max(settings.backoff_max, settings.backoff_initial),
        )

    def delay(self, attempt: int, hint: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        seconds = Backoff(self.backoff_initial, self.backoff_max).jittered(attempt)
        if hint is not None and hint > seconds:
            seconds = float(hint)
        return seconds

    def next_attempt(
        self, *, attempts_done: int, since: datetime, now: datetime, hint: float | None = None
    ) -> datetime | None:
        """When to try next after ``attempts_done`` attempts, or None to give up (dead)."""
        if attempts_done >= self.max_attempts:
            return None
        due = now + timedelta(seconds=self.delay(attempts_done, hint))
        if (due - since).total_seconds() > self.max_age:
            return None
        return due
