"""Durable state: the ``Journal`` interface and its backends."""

from .base import (
    AgentEvent,
    AppendResult,
    Delivery,
    DeliveryState,
    DuplicateOriginateError,
    Journal,
    JournalClosedError,
    RejectedRequest,
    StoredEvent,
)

__all__ = [
    "AgentEvent",
    "AppendResult",
    "Delivery",
    "DeliveryState",
    "DuplicateOriginateError",
    "Journal",
    "JournalClosedError",
    "RejectedRequest",
    "StoredEvent",
]
