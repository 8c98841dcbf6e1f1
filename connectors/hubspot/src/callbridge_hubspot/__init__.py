"""callbridge connector for HubSpot: lookup, screen-pop, call engagements, click-to-call."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
