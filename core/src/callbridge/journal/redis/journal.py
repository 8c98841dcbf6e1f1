"""``RedisJournal``: connects, checks the server, and puts the parts together."""

from __future__ import annotations

from ..base import DEFAULT_DEDUP_WINDOW
from ..codec import utc_now
from . import scripts
from .calls import RedisCalls
from .companies import RedisCompanies
from .events import RedisEvents


class RedisJournal(RedisEvents, RedisCalls, RedisCompanies):
    """The ``Journal`` in a Redis server. Thread-safe; create one per process.

    ``url`` is ``redis://[user:password@]host[:port][/db][?prefix=name]`` (``rediss://`` for
    TLS); other query parameters go to redis-py (e.g. ``socket_timeout``).
    """

    def __init__(self, url: str, *, dedup_window: float = DEFAULT_DEDUP_WINDOW) -> None:
        if not dedup_window > 0:
            raise ValueError(
                f"dedup_window must be a positive number of seconds, not {dedup_window}"
            )
        self._dedup_window_us = str(max(1, int(dedup_window * 1_000_000)))
        self._connect(url)
        register = self._client.register_script
        self._append = register(scripts.APPEND_LUA)
        self._stream_add = register(scripts.STREAM_ADD_LUA)
        self._save_call = register(scripts.SAVE_CALL_LUA)
        self._enqueue = register(scripts.ENQUEUE_LUA)
        self._complete = register(scripts.COMPLETE_LUA)
        self._fail = register(scripts.FAIL_LUA)
        self._retry = register(scripts.RETRY_LUA)
        self._reschedule = register(scripts.RESCHEDULE_LUA)
        self._start_writer()

    def __repr__(self) -> str:
        return f"RedisJournal({self._shown!r}, prefix={self.prefix!r})"

    def check_writable(self) -> None:
        """A write round trip; raises (``redis.RedisError``) when the server refuses writes."""
        self._redis.set(self._k("meta", "last_check"), utc_now().isoformat())

    def close(self) -> None:
        if self._closed:
            return
        self._stop_writer()
        self._client.close()
