"""The Salesforce connector of callbridge: lookup, Open CTI screen-pop, Tasks, click-to-call."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
