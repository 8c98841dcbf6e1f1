"""What the demo's ``Demo`` knows of its companies, and its small timing helpers.

Kept apart from ``runner.py`` (which starts and plays): with two companies
(``demo/companies.py``) each company has its own directory and API token, and everything
that reads a directory or signs a request asks here which one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..assembly import Assembly
from ..errors import ConfigurationError
from ..plugins.builtin.directory import DirectoryPlugin
from ..sim.emitter import HttpSink
from ..sim.scenarios import Scenario
from .companies import (
    DemoCompany,
    companies_available,
    demo_companies,
    directory_instance,
    seed,
    write_companies_file,
)
from .directory import DemoDirectory


class DemoTenants:
    """The companies part of ``Demo`` (a base class: it reads the demo's own attributes)."""

    companies: tuple[DemoCompany, ...]
    _directories: dict[int, DirectoryPlugin]
    api_token: str
    ingress_token: str
    data_dir: Path | None

    @property
    def directory(self) -> DemoDirectory:  # pragma: no cover - Demo's own
        raise NotImplementedError

    @property
    def running(self) -> Assembly:  # pragma: no cover - Demo's own
        raise NotImplementedError

    def directory_for(self, company_id: int = 1) -> DirectoryPlugin:
        """The directory of a company (its own instance when the demo runs two)."""
        return self._directories.get(company_id) or self.directory

    def api_token_for(self, extension: str) -> str:
        """The API token of the extension's company (each company has its own)."""
        found = (c.api_token for c in self.companies if extension in c.agents)
        return next(found, self.api_token)

    def _event_sink(self, url: str, companies: int) -> HttpSink:
        """Where the simulator sends events: ``url``, with each company's own ingress token
        when the demo runs two companies (they are made here)."""
        if companies > 1:
            self.companies = demo_companies(self.ingress_token, self.api_token)
        tokens = {str(c.company_id): c.ingress_token for c in self.companies}
        return HttpSink(url, self.ingress_token, timeout=10.0, company_tokens=tokens)

    def _companies_file(self, seri_token: str | None = None) -> dict[str, Path]:
        """The settings naming the companies file the demo writes (two companies only)."""
        if not self.companies or self.data_dir is None:
            return {}
        if not companies_available():
            raise ConfigurationError("a demo of two companies needs callbridge.companies")
        path = write_companies_file(self.companies, self.data_dir, seri_token)
        return {"companies_file": path}

    def _company_directories(self) -> dict[int, DirectoryPlugin]:
        """Each company's ``directory`` instance, seeded with its sample contacts."""
        found: dict[int, DirectoryPlugin] = {}
        for company in self.companies:
            directory = directory_instance(self.running.services.plugins, company.name)
            if directory is None:
                raise RuntimeError(f"the demo's company {company.name} has no directory")
            seed(directory, company)
            found[company.company_id] = directory
        return found


def rounds(scenarios: list[Scenario]) -> Iterator[tuple[int, Scenario]]:
    """The scenarios over and over, each with its round number (``run_forever``)."""
    round_ = 1
    while True:
        for scenario in scenarios:
            yield round_, scenario
        round_ += 1


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Whether ``condition`` came true within ``timeout`` (the demo goes on either way,
    unlike the test kit's ``wait_until``, which fails)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
