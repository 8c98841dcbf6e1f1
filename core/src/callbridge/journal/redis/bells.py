"""The agents' doorbell across processes: Redis pub/sub, with the journal as the only source.

An HTTP service must wake an agent's SSE stream when any engine worker, in any process on any
machine, appends a message for that agent. ``AGENT_ADD_LUA`` publishes ``"<extension> <id>"``
on the ``<prefix>:agent:bell`` channel in the same script that stores the message, and each
HTTP process runs one listener thread (``listen_agent_bells``) whatever the number of streams.

Pub/sub is fire-and-forget: a bell published while the listener is disconnected is gone. That
loses nothing, because a bell carries no data: streams read the messages from the journal's
stream in id order. After every (re)subscription the listener rings *every* stream (``None``),
so each re-reads what it may have missed, and the streams also re-read at each heartbeat.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import redis

from ...faults import FaultLog
from ..base import AgentBell
from .connection import RedisStore

log = logging.getLogger(__name__)

#: Longest pause, in seconds, between two attempts to subscribe again.
_RECONNECT_MAX = 2.0


class RedisBells(RedisStore):
    """``listen_agent_bells`` for the Redis journal."""

    def listen_agent_bells(self, ring: AgentBell) -> Callable[[], None] | None:
        """Start the listener thread; returns the function that stops it."""
        stop = threading.Event()
        thread = threading.Thread(
            target=self._bell_loop,
            args=(ring, stop),
            name=f"agent-bells:{self.prefix}",
            daemon=True,
        )
        thread.start()

        def close() -> None:
            stop.set()
            thread.join(5)

        return close

    def _bell_loop(self, ring: AgentBell, stop: threading.Event) -> None:
        channel = self._k("agent", "bell")
        faults = FaultLog(log)
        wait = 0.1
        while not stop.is_set():
            pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(channel)
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        # (Re)connected: bells published meanwhile are lost, the messages not.
                        ring(None, 0)
                        wait = 0.1
                        faults.clear("bells", "agent doorbell from Redis listening again")
                    elif message["type"] == "message":
                        extension, _, raw_id = str(message["data"]).rpartition(" ")
                        if extension and raw_id.isdigit():
                            ring(extension, int(raw_id))
            except (redis.RedisError, OSError) as exc:
                faults.report(
                    "bells",
                    f"agent doorbell from Redis at {self._shown} lost ({exc}); agent streams "
                    "re-read the journal at each heartbeat until it is back",
                )
                stop.wait(wait)
                wait = min(wait * 2, _RECONNECT_MAX)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()
