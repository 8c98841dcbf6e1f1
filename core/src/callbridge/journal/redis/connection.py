"""The Redis journal's connection: its URL, the client, the server's settings and key names."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from ...errors import ConfigurationError
from ..base import Journal, JournalClosedError
from ..tenancy import DEFAULT_COMPANY
from . import sentinel
from .sentinel import SentinelTarget

log = logging.getLogger(__name__)

#: Layout version of the keys; a server holding a newer one is refused rather than misread.
#: 2: per-company indexes (``redis/companies.py``); a layout-1 journal is upgraded on open.
SCHEMA_VERSION = 2

DEFAULT_PREFIX = "callbridge"

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:{}\-]{1,64}$")


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` and its query dropped, for display."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "<unparsable redis URL>"
    auth, at, hosts = parts.netloc.rpartition("@")
    if at:
        user, _, password = auth.partition(":")
        auth = user + (":***" if password else "") + "@"
    return urlunsplit((parts.scheme, f"{auth}{hosts}", parts.path, "", ""))


class NotReplicatedError(redis.RedisError):
    """Fewer replicas than ``wait_replicas`` confirmed a write in time: it is not acked."""


@dataclass(frozen=True)
class RedisUrl:
    """A journal URL, read: where to connect, the key prefix and the journal's options."""

    #: The URL for redis-py without the journal's options (plain ``redis://`` form); it
    #: holds the password, so it stays out of ``repr``.
    clean: str = field(repr=False)
    prefix: str
    #: Without the password, for ``repr``, logs and errors.
    shown: str
    #: Replicas that must confirm appends before the ingress acks them (``WAIT``); 0: none.
    wait_replicas: int = 0
    #: Milliseconds the ``WAIT`` may take before the append is refused (503, the PBX retries).
    wait_timeout_ms: int = 1000
    #: Set for ``redis+sentinel://`` URLs.
    sentinel: SentinelTarget | None = None


def _int_option(options: dict[str, str], name: str, default: int, shown: str) -> int:
    raw = options.pop(name, None)
    if raw is None:
        return default
    if not raw.isdigit():
        raise ConfigurationError(
            f"CALLBRIDGE_JOURNAL: {name} must be a whole number, not {raw!r} ({shown})"
        )
    return int(raw)


def split_url(url: str) -> RedisUrl:
    """Read a journal URL; a bad one is a ``ConfigurationError`` (with the password hidden)."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url.strip())
        if parts.scheme != sentinel.SCHEME:
            _ = parts.port  # raises on a bad port
    except ValueError:
        raise ConfigurationError(f"CALLBRIDGE_JOURNAL: not a valid Redis URL ({shown})") from None
    plain_host = parts.scheme == sentinel.SCHEME or bool(parts.hostname)
    if parts.scheme not in ("redis", "rediss", sentinel.SCHEME) or not plain_host:
        raise ConfigurationError(
            f"CALLBRIDGE_JOURNAL: expected redis://host[:port][/db][?prefix=name] or "
            f"{sentinel.SCHEME}://host[:port],.../service[/db] ({shown})"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = dict(query)
    prefix = options.pop("prefix", DEFAULT_PREFIX)
    if not _PREFIX_RE.match(prefix):
        raise ConfigurationError(
            f"CALLBRIDGE_JOURNAL: prefix {prefix!r} must be 1-64 letters, digits or _.:{{}}-"
        )
    wait_replicas = _int_option(options, "wait_replicas", 0, shown)
    wait_timeout = _int_option(options, "wait_timeout", 1000, shown)
    target = None
    if parts.scheme == sentinel.SCHEME:
        target = sentinel.parse_target(parts.netloc, parts.path, options, shown)
        if options:
            unknown = ", ".join(sorted(options))
            raise ConfigurationError(f"CALLBRIDGE_JOURNAL: unknown option {unknown} ({shown})")
    rest = urlencode([(key, value) for key, value in query if key in options])
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment))
    return RedisUrl(clean, prefix, shown, wait_replicas, wait_timeout, target)


class RedisStore(Journal):
    """What every part of ``RedisJournal`` shares: the client, the key prefix and the checks."""

    prefix: str
    _client: redis.Redis
    #: The URL without its password, for ``repr``, logs and errors.
    _shown: str
    _closed: bool
    #: See ``RedisUrl.wait_replicas`` and ``wait_timeout_ms``.
    _wait_replicas: int
    _wait_timeout_ms: int

    def _connect(self, url: str) -> None:
        """Connect to the server the URL names and check it: a bad URL, an unknown option or
        a server that cannot be used is a ``ConfigurationError`` (with the password hidden)."""
        target = split_url(url)
        self.prefix, self._shown = target.prefix, target.shown
        self._wait_replicas, self._wait_timeout_ms = target.wait_replicas, target.wait_timeout_ms
        self._closed = False
        # Retries re-send a command whose reply was lost. The event append, call and cursor
        # writes and delivery transitions are idempotent; a retried agent message or rejected
        # request may appear twice, which its readers tolerate.
        bad_option = f"CALLBRIDGE_JOURNAL: bad option in the Redis URL ({self._shown})"
        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": 5.0,
            "socket_timeout": 30.0,
            "health_check_interval": 30,
            "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3),
        }
        try:
            if target.sentinel is not None:
                self._client = sentinel.master_client(target.sentinel, **options)
            else:
                self._client = redis.Redis.from_url(target.clean, **options)
        except ValueError as exc:
            raise ConfigurationError(f"{bad_option}: {exc}") from None
        try:
            try:
                self._client.ping()
            except TypeError as exc:  # an unknown query parameter reaches the connection
                raise ConfigurationError(f"{bad_option}: {exc}") from None
            self._check_schema()
            #: What the server's persistence gives (see ``_check_durability``).
            self.durability: str = self._check_durability()
        except BaseException as exc:
            self._client.close()
            if not isinstance(exc, redis.RedisError):
                raise
            raise ConfigurationError(
                f"CALLBRIDGE_JOURNAL: cannot use Redis at {self._shown}: {exc}"
            ) from None

    def _replicated(self, reply: object) -> NotReplicatedError | None:
        """The error to fail writes with when ``WAIT``'s ``reply`` falls short, else None."""
        if isinstance(reply, Exception):
            return NotReplicatedError(f"WAIT failed: {reply}")
        if int(cast(int, reply)) < self._wait_replicas:
            return NotReplicatedError(
                f"{reply} of {self._wait_replicas} replicas confirmed the write within "
                f"{self._wait_timeout_ms} ms (CALLBRIDGE_JOURNAL's wait_replicas)"
            )
        return None

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _agent_key(self, extension: str, company: str | None) -> str:
        """An agent's stream: ``agent:<extension>`` in the default company (the key it had
        before companies), ``agent:<extension>@<company>`` in another."""
        if not company or company == DEFAULT_COMPANY:
            return self._k("agent", extension)
        return self._k("agent", f"{extension}@{company}")

    @property
    def _redis(self) -> redis.Redis:
        if self._closed:
            raise JournalClosedError("the journal is closed")
        return self._client

    def _check_schema(self) -> None:
        key = self._k("meta", "schema")
        self._client.set(key, SCHEMA_VERSION, nx=True)
        found = int(self._client.get(key) or SCHEMA_VERSION)
        if found > SCHEMA_VERSION:
            raise RuntimeError(
                f"the Redis journal at {self._shown} (prefix {self.prefix!r}) has layout "
                f"{found}, newer than this callbridge's {SCHEMA_VERSION}: upgrade callbridge"
            )
        if found < SCHEMA_VERSION:
            self.upgrade_layout()
            self._client.set(key, SCHEMA_VERSION)

    def upgrade_layout(self) -> None:
        """Bring a journal of an older layout to ``SCHEMA_VERSION`` (``redis/companies.py``)."""
        raise NotImplementedError

    def _check_durability(self) -> str:
        """Read (never change) the server's persistence settings; warn when not durable.

        Returns what the server gives: ``always``, ``everysec``, ``no`` (the ``appendfsync``
        policy), ``off`` (no append-only file) or ``unknown`` (``CONFIG`` refused).
        """
        try:
            config = cast(dict[str, str], self._client.config_get("append*"))
        except redis.ResponseError as exc:
            log.warning(
                "journal: cannot read the persistence settings of Redis at %s (%s); events "
                "are only as durable as its configuration: use appendonly yes and "
                "appendfsync always",
                self._shown,
                exc,
            )
            return "unknown"
        self._check_eviction()
        if config.get("appendonly") != "yes":
            log.warning(
                "journal: Redis at %s runs without an append-only file (appendonly no): "
                "events acknowledged since its last snapshot (if any) are lost when Redis "
                "crashes; set appendonly yes and appendfsync always",
                self._shown,
            )
            return "off"
        fsync = config.get("appendfsync", "unknown")
        if fsync == "everysec":
            log.warning(
                "journal: Redis at %s fsyncs its append-only file once a second "
                "(appendfsync everysec): a crash of its host can lose the last second of "
                "acknowledged events; set appendfsync always",
                self._shown,
            )
        elif fsync != "always":
            log.warning(
                "journal: Redis at %s leaves fsync to the OS (appendfsync %s): a crash of its "
                "host can lose acknowledged events; set appendfsync always",
                self._shown,
                fsync,
            )
        return fsync

    def _check_eviction(self) -> None:
        """Warn when the server may evict keys: an evicted key is journal data gone."""
        config = cast(dict[str, str], self._client.config_get("maxmemory*"))
        policy = config.get("maxmemory-policy", "noeviction")
        if config.get("maxmemory", "0") != "0" and policy != "noeviction":
            log.warning(
                "journal: Redis at %s may evict keys when full (maxmemory-policy %s): that "
                "would silently drop journal data; use maxmemory-policy noeviction",
                self._shown,
                policy,
            )
