"""Durable state: the ``Journal`` interface and its backends."""

from .base import (
    AgentEvent,
    AppendResult,
    Delivery,
    DeliveryState,
    Journal,
    RejectedRequest,
    StoredEvent,
)

__all__ = [
    "AgentEvent",
    "AppendResult",
    "Delivery",
    "DeliveryState",
    "Journal",
    "RejectedRequest",
    "StoredEvent",
]
