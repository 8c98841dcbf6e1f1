"""Small things the engine's parts share: the clock, error text, and hook fan-out."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..plugins.manager import Plugins

#: Longest error text kept on a delivery or a dead letter.
MAX_ERROR = 1000


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def describe(exc: BaseException) -> str:
    """``Type: message``, cut to ``MAX_ERROR`` characters (it is stored and logged)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def fan_out(plugins: Plugins, log: logging.Logger, hook: str, **kwargs: Any) -> None:
    """Call ``hook`` on each plugin separately: one failing never stops the others."""
    for name in plugins.implementers(hook):
        try:
            plugins.call_one(name, hook, **kwargs)
        except Exception as exc:
            log.warning("plugin %s failed in %s: %s", name, hook, describe(exc))
