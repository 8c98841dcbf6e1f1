"""The parts the HTTP service works with, gathered so the app factory takes one object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..journal.base import Journal
    from ..plugins.manager import Plugins
    from ..settings import Settings
    from ..voispeed.client import PbxClient


@dataclass
class Services:
    """Settings, journal, PBX client, plugins, and the engine that drives them.

    ``engine`` is anything with ``running: bool`` and a ``bus`` for agent events; the HTTP
    service never calls plugins itself (except ``register_routes`` at start-up).
    """

    settings: Settings
    journal: Journal
    pbx: PbxClient | None = None
    plugins: Plugins | None = None
    engine: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
