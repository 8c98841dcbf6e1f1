"""callbridge connector for Pipedrive: caller lookup among persons, screen-pop links, call logs."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("callbridge-pipedrive")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"
