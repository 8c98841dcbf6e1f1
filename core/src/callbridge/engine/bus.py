"""In-process pub/sub for agent events, from the dispatcher's threads to SSE streams.

The dispatcher publishes each agent event (already in the journal, with its id) here; the
HTTP service's stream for an extension subscribes and hands the event to its asyncio loop
with ``loop.call_soon_threadsafe`` (see ``subscribe_queue``). Subscribers are called in the
publishing thread and must not block; one that raises is logged and the others still get the
event. Nothing here is durable: a stream that missed messages replays them from the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from ..journal.base import AgentBell, AgentEvent

log = logging.getLogger(__name__)

Subscriber = Callable[[AgentEvent], None]

#: The kind of a bell that asks every stream to re-read the journal (a doorbell reconnected).
RECHECK = "recheck"


def ring_bus(bus: AgentBus) -> AgentBell:
    """The journal's doorbell (``Journal.listen_agent_bells``) ringing ``bus``: a bell per
    message, or a ``RECHECK`` for every stream. Bells carry no data: streams read the journal."""

    def ring(extension: str | None, event_id: int) -> None:
        now = datetime.now(UTC)
        if extension is None:
            bus.publish_all(AgentEvent(id=0, extension="*", at=now, kind=RECHECK, data={}))
        else:
            bus.publish(AgentEvent(id=event_id, extension=extension, at=now, kind="bell", data={}))

    return ring


class AgentBus:
    """Thread-safe fan-out of agent events, per extension or for all (``None``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str | None, list[Subscriber]] = {}

    def subscribe(self, extension: str | None, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` for each event of ``extension`` (every event for None).

        Returns the function that detaches it (safe to call twice).
        """
        with self._lock:
            self._subscribers.setdefault(extension, []).append(callback)

        def detach() -> None:
            with self._lock:
                callbacks = self._subscribers.get(extension, [])
                if callback in callbacks:
                    callbacks.remove(callback)
                if not callbacks:
                    self._subscribers.pop(extension, None)

        return detach

    def subscribe_queue(
        self,
        extension: str | None,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[AgentEvent],
    ) -> Callable[[], None]:
        """Feed ``queue`` on ``loop`` from any thread; a full queue drops (the stream replays)."""

        def offer(event: AgentEvent) -> None:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning(
                    "agent stream for %s is full; it will replay from the journal", extension
                )

        def callback(event: AgentEvent) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the stream is gone
                loop.call_soon_threadsafe(offer, event)

        return self.subscribe(extension, callback)

    def publish(self, event: AgentEvent) -> None:
        """Hand ``event`` to its extension's subscribers and to catch-all ones."""
        with self._lock:
            targets = [
                *self._subscribers.get(event.extension, ()),
                *self._subscribers.get(None, ()),
            ]
        for callback in targets:
            try:
                callback(event)
            except Exception:
                log.exception("agent event subscriber failed")

    def publish_all(self, event: AgentEvent) -> None:
        """Hand ``event`` to every subscriber, whatever its extension (a "re-read" bell)."""
        with self._lock:
            targets = [
                callback for callbacks in self._subscribers.values() for callback in callbacks
            ]
        for callback in targets:
            try:
                callback(event)
            except Exception:
                log.exception("agent event subscriber failed")

    def subscriber_count(self) -> int:
        """How many callbacks are attached (for metrics and tests)."""
        with self._lock:
            return sum(len(v) for v in self._subscribers.values())
