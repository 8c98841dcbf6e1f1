"""Small things the engine's parts share: the clock and error text."""

from __future__ import annotations

from datetime import UTC, datetime

#: Longest error text kept on a delivery or a dead letter.
MAX_ERROR = 1000


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def describe(exc: BaseException) -> str:
    """``Type: message``, cut to ``MAX_ERROR`` characters (it is stored and logged)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"
