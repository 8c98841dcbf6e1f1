"""How to run the demo (``DemoOptions``) and what a run counted (``Summary``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .companies import companies_available
from .feed import ScenarioChecked


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo. Every field has a default that works on a fresh clone."""

    #: Where the journal and the directory live (default: a temporary directory, removed).
    data_dir: Path | None = None
    host: str = "127.0.0.1"
    #: callbridge's port (0: a free one).
    port: int = 0
    #: Scenario waits are divided by this (2 plays twice as fast).
    speed: float = 1.0
    #: Seconds before the simulated customer answers a call placed from the panel, and talks.
    panel_answer_after: float = 3.0
    panel_talk_time: float = 8.0
    #: The simulated PBX's dialect: ``soap`` (the document's) or ``seri`` (the integration
    #: module's events at ``/pbx/seri`` and ``call_request`` at ``seri_endpoint.php``).
    dialect: Literal["soap", "seri"] = "soap"
    #: Companies on the simulated PBX: 2 (ACME and Globex, each with its own directory,
    #: tokens and PBX account, ``demo/companies.py``) where callbridge has the companies
    #: loader, else 1 (ACME alone).
    companies: int = field(default_factory=lambda: 2 if companies_available() else 1)


@dataclass(frozen=True)
class Summary:
    """Counts for the end of a run."""

    calls: int
    pops: int
    activities: dict[str, int]
    pending: int
    dead: int
    checks: tuple[ScenarioChecked, ...] = ()

    @property
    def failed(self) -> list[ScenarioChecked]:
        """Scenarios whose activities were not the expected ones."""
        return [c for c in self.checks if not c.ok]
