"""Build the running service from settings: journal, plugins, PBX client, engine, sources.

``callbridge serve`` and the demo use this, so both run exactly the same parts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..engine.engine import Engine
from ..journal.factory import open_journal
from ..plugins.manager import load_plugins
from ..settings import Settings
from ..voispeed.soap import SoapClient
from .services import Services

log = logging.getLogger("callbridge.server")


@dataclass
class Running:
    """What ``build`` made, so the caller can close it in order."""

    services: Services
    engine: Engine
    sources: list[Any] = field(default_factory=list)
    stop_sources: threading.Event = field(default_factory=threading.Event)

    def start_sources(self) -> None:
        """Start the optional event sources (MySQL outbox) in their threads."""
        for source in self.sources:
            source.start(self.stop_sources)

    def close(self) -> None:
        """Stop sources, the engine, then the PBX client and the journal."""
        self.stop_sources.set()
        for source in self.sources:
            source.close()
        self.engine.stop()
        if self.services.pbx is not None:
            self.services.pbx.close()
        self.services.journal.close()


def build(settings: Settings, *, extra_plugins: Sequence[object] = ()) -> Running:
    """Open the journal, load plugins, make the PBX client (when configured) and the engine."""
    journal = open_journal(settings)
    plugins = load_plugins(settings, extra=extra_plugins)
    for info in plugins.infos:
        if info.state != "active":
            log.info("plugin %s: %s (%s)", info.name, info.state, info.reason or "")
    pbx = None
    if settings.pbx.user and settings.pbx.password_hash():
        pbx = SoapClient(settings.pbx)
    engine = Engine(settings, journal=journal, plugins=plugins, pbx=pbx)
    services = Services(settings=settings, journal=journal, pbx=pbx, plugins=plugins, engine=engine)
    running = Running(services=services, engine=engine)
    if settings.source is not None:
        from ..mysql.settings import source_from_settings

        source = source_from_settings(settings, journal)
        if source is not None:
            running.sources.append(source)
    services.extras["sources"] = running.sources  # the ingress nudges them (sys_exec mode)
    return running
