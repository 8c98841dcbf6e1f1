"""callbridge connector for Zoho CRM: lookup, a link in the pop, one Calls record per call."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
