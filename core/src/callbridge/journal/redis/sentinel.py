"""Redis behind Sentinel: the ``redis+sentinel://`` journal URL and the client it makes.

The one supported high-availability set-up (docs/scaling.md): a master, one or more
replicas, and three Sentinels that elect a new master when it fails. The URL names the
Sentinels, not the master, so a failover needs no change of configuration::

    redis+sentinel://[user:password@]host1[:26379],host2[:26379],.../service[/db][?options]

``user:password`` are the data nodes' (Redis ``requirepass``/ACL); the Sentinels' own password,
when they have one, is the ``sentinel_password`` option. ``service`` is the name in the
Sentinels' ``sentinel monitor`` line. Other options are the journal's (``prefix``,
``wait_replicas``, ``wait_timeout``).

redis-py's ``Sentinel.master_for`` asks the Sentinels where the master is before each new
connection and drops a connection whose server was demoted (a ``READONLY`` reply), so the
journal's retries reach the new master once the Sentinels promoted it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import redis
from redis.sentinel import Sentinel

from ...errors import ConfigurationError

SCHEME = "redis+sentinel"
DEFAULT_PORT = 26379
#: Seconds to wait for a Sentinel's answer (where is the master?).
_SENTINEL_TIMEOUT = 5.0

_FORM = f"{SCHEME}://[user:password@]host[:port][,host[:port]...]/service[/db]"


@dataclass(frozen=True)
class SentinelTarget:
    """What a ``redis+sentinel://`` URL names."""

    sentinels: list[tuple[str, int]]
    service: str
    db: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)


def _host_port(item: str, shown: str) -> tuple[str, int]:
    host, port = item, str(DEFAULT_PORT)
    if item.startswith("["):  # [IPv6]:port
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":") or port
    elif ":" in item:
        host, _, port = item.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"CALLBRIDGE_JOURNAL: bad Sentinel address in {shown}")
    return host, int(port)


def parse_target(netloc: str, path: str, options: dict[str, str], shown: str) -> SentinelTarget:
    """The Sentinels, service and credentials of a ``redis+sentinel://`` URL."""
    auth, _, hosts = netloc.rpartition("@")
    username, _, password = auth.partition(":")
    sentinels = [_host_port(item.strip(), shown) for item in hosts.split(",") if item.strip()]
    service, _, db = path.strip("/").partition("/")
    if not sentinels or not service or not (db or "0").isdigit():
        raise ConfigurationError(f"CALLBRIDGE_JOURNAL: expected {_FORM} ({shown})")
    return SentinelTarget(
        sentinels=sentinels,
        service=unquote(service),
        db=int(db or 0),
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=options.pop("sentinel_password", None),
    )


def master_client(target: SentinelTarget, **client: Any) -> redis.Redis:
    """A client of the current master, following failovers (``client``: connection options)."""
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": _SENTINEL_TIMEOUT,
        "socket_connect_timeout": _SENTINEL_TIMEOUT,
    }
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        target.sentinels, sentinel_kwargs=sentinel_kwargs
    )
    master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        **client,
    )
    return master
