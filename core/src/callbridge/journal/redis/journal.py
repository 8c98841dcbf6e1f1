"""``RedisJournal``: connects, checks the server, and puts the parts together."""

from __future__ import annotations

from ..base import DEFAULT_DEDUP_WINDOW
from ..codec import utc_now
from . import scripts
from .bells import RedisBells
from .calls import RedisCalls
from .companies import RedisCompanies
from .events import RedisEvents
from .sharing import RedisWorkShare


class RedisJournal(RedisEvents, RedisCalls, RedisCompanies, RedisBells):
    """The ``Journal`` in a Redis server. Thread-safe; create one per process.

    ``url`` is ``redis://[user:password@]host[:port][/db][?prefix=name]`` (``rediss://`` for
    TLS) or ``redis+sentinel://host[:port],.../service[/db]`` (see ``sentinel.py``); with
    ``wait_replicas=N`` (and ``wait_timeout=ms``) appends are acked only once N replicas
    have them. Other query parameters of a plain URL go to redis-py (``socket_timeout``).
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
        self._agent_add = register(scripts.AGENT_ADD_LUA)
        self._save_call = register(scripts.SAVE_CALL_LUA)
        self._enqueue = register(scripts.ENQUEUE_LUA)
        self._complete = register(scripts.COMPLETE_LUA)
        self._fail = register(scripts.FAIL_LUA)
        self._retry = register(scripts.RETRY_LUA)
        self._reschedule = register(scripts.RESCHEDULE_LUA)
        self._start_writer()

    def __repr__(self) -> str:
        return f"RedisJournal({self._shown!r}, prefix={self.prefix!r})"

    def work_share(self, worker: str | None = None) -> RedisWorkShare:
        """Several ``callbridge engine`` processes may share this journal: each takes a
        share of the partitions (``sharing.py``)."""
        return RedisWorkShare(self._redis, self.prefix, worker=worker)

    def check_writable(self) -> None:
        """A write round trip; raises (``redis.RedisError``) when the server refuses writes,
        or when fewer replicas than ``wait_replicas`` confirm it (appends would be refused)."""
        self._redis.set(self._k("meta", "last_check"), utc_now().isoformat())
        if self._wait_replicas:
            reply = self._redis.execute_command(  # type: ignore[no-untyped-call]
                "WAIT", self._wait_replicas, self._wait_timeout_ms
            )
            short = self._replicated(reply)
            if short is not None:
                raise short

    def close(self) -> None:
        if self._closed:
            return
        self._stop_writer()
        self._client.close()
