"""One assembly of the running service from settings: journal, plugins, PBX client, engine.

``callbridge serve``, ``callbridge engine`` (the engine process), the demo and the test kit
(``callbridge.testing.LiveService``) all build their parts here, so they run the same parts
wired the same way. Nothing is built later on first use: what ``assemble`` returns is complete.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .companies import Companies, load_companies
from .companies.registry import install as install_companies
from .engine.bus import AgentBus, ring_bus
from .engine.engine import Engine
from .journal.base import Journal
from .journal.factory import open_journal
from .mysql.source import MysqlSource
from .plugins.manager import Plugins, load_plugins
from .server.engine_link import EngineLink
from .server.services import EngineHandle, EventSource, Services
from .settings import Settings
from .voispeed.client import PbxClient, pbx_client

log = logging.getLogger("callbridge.server")

#: Where the engine runs: ``thread`` in this process (the engine process, tests, the demo);
#: ``process`` as a ``callbridge engine`` child (``callbridge serve``'s default); ``none``
#: nowhere here (one runs elsewhere on the same journal).
EngineMode = Literal["process", "thread", "none"]


@dataclass
class Assembly:
    """What ``assemble`` made, so the caller can start sources and close it all in order."""

    settings: Settings
    journal: Journal
    plugins: Plugins
    pbx: PbxClient | None
    engine: EngineHandle | None
    #: MySQL sources that run in this process (started by ``start_sources``).
    sources: list[MysqlSource] = field(default_factory=list)
    #: What the HTTP service takes: the same parts, and the sources the ingress nudges.
    services: Services = field(init=False)
    stop_sources: threading.Event = field(default_factory=threading.Event)
    #: Stops the journal's doorbell listener (``listen_agent_bells``), when one runs.
    stop_bells: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.services = Services(
            settings=self.settings,
            journal=self.journal,
            pbx=self.pbx,
            plugins=self.plugins,
            engine=self.engine,
        )

    @property
    def local_engine(self) -> Engine:
        """The in-process engine (``engine_mode="thread"``); an error otherwise."""
        if not isinstance(self.engine, Engine):
            raise RuntimeError("the engine does not run in this process")
        return self.engine

    def start_sources(self) -> None:
        """Start the MySQL sources of this process in their threads."""
        for source in self.sources:
            source.start(self.stop_sources)

    def close(self) -> None:
        """Stop sources, the engine, then the PBX client and the journal."""
        self.stop_sources.set()
        for source in self.sources:
            source.close()
        if self.stop_bells is not None:
            self.stop_bells()
        if self.engine is not None:
            self.engine.stop()
        for client in [self.pbx, *self.services.pbx_clients.values()]:
            if client is not None:
                client.close()
        self.journal.close()


def _runs_mysql_source(settings: Settings) -> bool:
    if settings.source is None:
        return False
    from .mysql.settings import is_mysql_url

    return is_mysql_url(settings.source.get_secret_value())


def _local_sources(settings: Settings, journal: Journal) -> list[MysqlSource]:
    if settings.source is None:
        return []
    from .mysql.settings import source_from_settings

    source = source_from_settings(settings, journal)
    return [] if source is None else [source]


def _plugins_and_clients(
    settings: Settings, companies: Companies, extra: Sequence[object], only_extra: bool
) -> tuple[Plugins, PbxClient | None, dict[str, PbxClient | None]]:
    """The plugins (one instance per company that lists one), the PBX client, and each
    company's own PBX client when there is a companies file."""
    plugins = load_plugins(
        settings,
        entry_points=not only_extra,
        builtins=not only_extra,
        extra=extra,
        companies=companies,
    )
    pbx = pbx_client(settings.pbx)  # SOAP or SERI, as CALLBRIDGE_PBX__DIALECT says
    clients = {} if companies.single else {c.name: pbx_client(c.pbx_settings) for c in companies}
    return plugins, pbx, clients


def assemble(
    settings: Settings,
    *,
    engine_mode: EngineMode = "thread",
    beside_ingress: bool = False,
    extra_plugins: Sequence[object] = (),
    only_extra_plugins: bool = False,
    child_env: dict[str, str] | None = None,
    serves_http: bool = True,
) -> Assembly:
    """Open the journal, load plugins, make the PBX client (when configured) and the engine.

    ``beside_ingress``: this is the engine process of a ``serve`` (see ``open_journal``).
    ``serves_http``: agent streams may run here, so listen to the journal's doorbell when it
    has one (Redis: the engine that writes a pop may run in another process or machine).
    ``only_extra_plugins`` loads no built-in or installed plugin (the demo: none may read
    the user's variables and reach a real CRM). The MySQL source runs wherever the engine runs: with
    ``process``, the ingress's nudges go through the link to the child's source.
    """
    if engine_mode == "process" and extra_plugins:
        raise ValueError("extra plugin objects cannot be handed to an engine process")
    # Before the journal: a bad file changes nothing.
    companies = install_companies(load_companies(settings))
    journal = open_journal(settings, beside_ingress=beside_ingress)
    try:
        plugins, pbx, clients = _plugins_and_clients(
            settings, companies, extra_plugins, only_extra_plugins
        )
    except BaseException:
        journal.close()
        raise
    for info in plugins.infos:
        if info.state != "active":
            log.info("plugin %s: %s (%s)", info.name, info.state, info.reason or "")
    engine: EngineHandle | None = None
    sources: list[MysqlSource] = []
    nudged: list[EventSource] = []
    if engine_mode == "thread":
        engine = Engine(settings, journal=journal, plugins=plugins, pbx=pbx)
        sources = _local_sources(settings, journal)
        nudged = list(sources)
    elif engine_mode == "process":
        link = EngineLink(
            env=child_env,
            heartbeat_timeout=settings.server.engine_heartbeat_timeout,
            restart_max=settings.server.engine_restart_max,
        )
        engine = link
        # Without a source in the child, the ingress answers the nudges 409.
        nudged = [link] if _runs_mysql_source(settings) else []
    assembly = Assembly(
        settings=settings, journal=journal, plugins=plugins, pbx=pbx, engine=engine, sources=sources
    )
    assembly.services.sources = nudged
    assembly.services.pbx_clients = clients
    if serves_http:
        _listen_bells(assembly)
    return assembly


def _listen_bells(assembly: Assembly) -> None:
    """Ring this process's agent streams from the journal's doorbell, when it has one."""
    bus = AgentBus()
    assembly.stop_bells = assembly.journal.listen_agent_bells(ring_bus(bus))
    if assembly.stop_bells is not None:
        assembly.services.bus = bus
