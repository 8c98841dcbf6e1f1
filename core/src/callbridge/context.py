"""What ``startup``/``shutdown`` hooks receive: the running service's shared parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .journal.base import Journal
    from .settings import Settings
    from .voispeed.client import PbxClient


@dataclass
class Context:
    """The service's settings, journal and PBX client, for plugins that need them."""

    settings: Settings
    journal: Journal
    pbx: PbxClient | None = None
    #: Free room for plugins to share objects by name.
    extras: dict[str, Any] = field(default_factory=dict)
    #: The company the plugin instance serves (``default`` without a companies file); its
    #: ``settings`` are that company's view (its own data directory and PBX settings).
    company: str = "default"
