"""The parts the HTTP service works with, gathered so the app factory takes one object.

Two seams are real, and typed as Protocols: the engine may run in this process
(``engine.engine.Engine``) or in a child (``server.engine_link.EngineLink``), and the
sys_exec trigger's nudges go to a MySQL source running here (``mysql.source.MysqlSource``)
or in the engine's process (through the ``EngineLink``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..companies.registry import Companies, install, load_companies

if TYPE_CHECKING:
    from ..engine.bus import AgentBus
    from ..journal.base import Journal
    from ..plugins.manager import Plugins
    from ..settings import Settings
    from ..voispeed.client import PbxClient


class EngineHandle(Protocol):
    """The engine as the HTTP service sees it, wherever it runs.

    The service never calls plugins itself (except ``register_routes`` at start-up): it
    starts and stops the engine, wakes it after appending events (``notify``), reads agent
    events from its ``bus``, and reports ``running`` and ``problem`` on ``/readyz``.
    """

    @property
    def bus(self) -> AgentBus: ...

    @property
    def running(self) -> bool: ...

    @property
    def problem(self) -> str | None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def wake(self) -> None: ...

    def reload(self, companies: Companies) -> None: ...


class EventSource(Protocol):
    """A source of PBX events the ingress can wake: a sys_exec trigger announced a row."""

    def nudge(self) -> None: ...


@dataclass
class Services:
    """Settings, journal, PBX client, plugins, the engine, and the sources the ingress wakes."""

    settings: Settings
    journal: Journal
    pbx: PbxClient | None = None
    plugins: Plugins | None = None
    engine: EngineHandle | None = None
    sources: list[EventSource] = field(default_factory=list)
    #: The doorbell of the agent streams when the journal rings it across processes (Redis:
    #: engines may run anywhere); None to use the engine's own bus.
    bus: AgentBus | None = None
    #: The companies served: the plugins', else read from the settings (docs/companies.md).
    companies: Companies = field(init=False)
    #: Each company's PBX client (its own credentials); ``pbx`` is ``default``'s.
    pbx_clients: dict[str, PbxClient | None] = field(default_factory=dict)
    #: Called with the new companies after a reload (the API's token grants, its tenants).
    reloaded: list[Callable[[Companies], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.plugins is not None and len(self.plugins.companies):
            self.companies = self.plugins.companies
        else:
            self.companies = load_companies(self.settings)

    def reload(self) -> Companies:
        """Read the companies file again and swap in its companies (SIGHUP, see
        ``companies.reload``). ConfigurationError (an invalid file): nothing changed.

        The engine reloads its own plugins: in this process (``thread``) they are these, in a
        child (``process``) it is told to. The plugins here serve the API (contact search).
        """
        from ..voispeed.client import pbx_client

        companies = install(load_companies(self.settings))
        engine = self.engine
        if engine is not None:
            engine.reload(companies)
        if self.plugins is not None and getattr(engine, "plugins", None) is not self.plugins:
            self.plugins.reload(self.settings, companies)
        old = self.pbx_clients
        self.pbx_clients = {
            c.name: pbx_client(c.pbx_settings) for c in companies if not companies.single
        }
        self.companies = companies
        for hook in self.reloaded:
            hook(companies)
        for client in old.values():
            if client is not None:
                client.close()
        return companies

    def pbx_for(self, company: str) -> PbxClient | None:
        """The PBX client of ``company`` (``pbx`` for ``default`` or without per-company ones)."""
        if company in self.pbx_clients:
            return self.pbx_clients[company]
        return self.pbx if self.companies.single else None

    def agent_bus(self) -> AgentBus | None:
        """Where the agent streams of this process learn that new messages are in the
        journal: the journal's shared doorbell, else the engine's, else none (the streams
        then re-read at each heartbeat)."""
        if self.bus is not None:
            return self.bus
        return self.engine.bus if self.engine is not None else None
