"""Build the running service from settings: journal, plugins, PBX client, engine, sources.

``callbridge serve`` and the demo use this, so both run exactly the same parts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..engine.engine import Engine
from ..journal.factory import open_journal
from ..plugins.manager import load_plugins
from ..settings import Settings
from ..voispeed.client import pbx_client
from .engine_link import EngineLink
from .services import Services

log = logging.getLogger("callbridge.server")


@dataclass
class Running:
    """What ``build`` made, so the caller can close it in order."""

    services: Services
    engine: Engine | EngineLink | None
    sources: list[Any] = field(default_factory=list)
    stop_sources: threading.Event = field(default_factory=threading.Event)

    @property
    def local_engine(self) -> Engine:
        """The in-process engine (``engine_mode="thread"``); an error otherwise."""
        if not isinstance(self.engine, Engine):
            raise RuntimeError("the engine does not run in this process")
        return self.engine

    def start_sources(self) -> None:
        """Start the optional event sources (MySQL outbox) in their threads."""
        for source in self.sources:
            source.start(self.stop_sources)

    def close(self) -> None:
        """Stop sources, the engine, then the PBX client and the journal."""
        self.stop_sources.set()
        for source in self.sources:
            source.close()
        if self.engine is not None:
            self.engine.stop()
        if self.services.pbx is not None:
            self.services.pbx.close()
        self.services.journal.close()


EngineMode = Literal["process", "thread", "none"]


def _runs_mysql_source(settings: Settings) -> bool:
    if settings.source is None:
        return False
    from ..mysql.settings import is_mysql_url

    return is_mysql_url(settings.source.get_secret_value())


def build(
    settings: Settings,
    *,
    extra_plugins: Sequence[object] = (),
    engine_mode: EngineMode = "thread",
    child_env: dict[str, str] | None = None,
) -> Running:
    """Open the journal, load plugins, make the PBX client (when configured) and the engine.

    ``engine_mode``: ``thread`` runs the engine in this process (tests, the demo);
    ``process`` runs ``callbridge engine`` as a child with ``child_env`` (``callbridge
    serve``'s default); ``none`` runs no engine (one runs elsewhere on the same journal).
    The MySQL source runs wherever the engine runs.
    """
    journal = open_journal(settings)
    plugins = load_plugins(settings, extra=extra_plugins)
    for info in plugins.infos:
        if info.state != "active":
            log.info("plugin %s: %s (%s)", info.name, info.state, info.reason or "")
    pbx = pbx_client(settings.pbx)  # SOAP or SERI, as CALLBRIDGE_PBX__DIALECT says
    engine: Engine | EngineLink | None = None
    if engine_mode == "thread":
        engine = Engine(settings, journal=journal, plugins=plugins, pbx=pbx)
    elif engine_mode == "process":
        if extra_plugins:
            raise ValueError("extra plugin objects cannot be handed to an engine process")
        engine = EngineLink(
            env=child_env,
            heartbeat_timeout=settings.server.engine_heartbeat_timeout,
            restart_max=settings.server.engine_restart_max,
        )
    services = Services(settings=settings, journal=journal, pbx=pbx, plugins=plugins, engine=engine)
    running = Running(services=services, engine=engine)
    if isinstance(engine, EngineLink):
        # The ingress's nudges go through the pipe, to the source the engine process runs;
        # without one the ingress answers them 409.
        services.extras["sources"] = [engine] if _runs_mysql_source(settings) else []
        return running
    if settings.source is not None and engine_mode == "thread":
        from ..mysql.settings import source_from_settings

        source = source_from_settings(settings, journal)
        if source is not None:
            running.sources.append(source)
    services.extras["sources"] = running.sources  # the ingress nudges them (sys_exec mode)
    return running
