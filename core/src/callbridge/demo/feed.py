"""What the demo tells its view: small immutable facts, in the order they happen.

The runner turns the engine's agent events (pops), the directory's writes (activities) and
its own steps (scenarios, clicks, checks) into these; the view only renders them, so a test
can subscribe to the same feed and a different front end could too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CallUpdate:
    """A pop on an agent's stream: a call rang, was answered or ended."""

    key: str
    extension: str
    state: str
    direction: str
    number: str
    contact: str | None = None
    company: str | None = None
    ambiguous: int = 0
    outcome: str | None = None
    group: str | None = None
    at: datetime = field(default_factory=_now)


@dataclass(frozen=True)
class ActivityWritten:
    """A plugin wrote the activity of a finished call."""

    plugin: str
    activity_id: str
    key: str
    extension: str
    direction: str
    outcome: str | None
    number: str
    contact: str | None = None
    at: datetime = field(default_factory=_now)


@dataclass(frozen=True)
class ScenarioStarted:
    """The runner begins a scenario."""

    name: str
    summary: str
    round: int = 1
    at: datetime = field(default_factory=_now)


@dataclass(frozen=True)
class ScenarioChecked:
    """A scenario's activities compared with what it declares; ``problems`` empty when right."""

    name: str
    problems: tuple[str, ...] = ()
    at: datetime = field(default_factory=_now)

    @property
    def ok(self) -> bool:
        """Every expected activity was written, and nothing else."""
        return not self.problems


@dataclass(frozen=True)
class Note:
    """Anything else worth a line (a click-to-call sent through the API, a warning)."""

    text: str
    at: datetime = field(default_factory=_now)


DemoEvent = CallUpdate | ActivityWritten | ScenarioStarted | ScenarioChecked | Note
