"""Real processes for the scale-out tests: a redis-server, ``callbridge serve --role ...``
instances on it, and an agent stream reader.

Every service gets its own data directory (nothing is shared but Redis) and the same journal
URL; the engine's ``directory`` connector writes its activities in the engine's directory.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from redis_support import RedisServer, free_port, start_redis
from server_support import API_TOKEN, INGRESS_TOKEN, SseReader
from service_support import Service

from callbridge.testing import services, wait_until
from callbridge.testing.services import find_binary


def need_redis() -> None:
    """Skip (or fail, in CI) when redis-server is missing."""
    services.require("redis")


def role_service(data_dir: Path, journal: str, role: str, **env: str) -> Service:
    """A ``callbridge serve --role <role>`` (not started) on the journal ``journal``."""
    service = Service(data_dir, CALLBRIDGE_JOURNAL=journal, **env)
    service.start_args = ("--role", role)
    return service


def agent_stream(service: Service, extension: str = "201", **headers: str) -> SseReader:
    """The agent's SSE stream on ``service``."""
    return SseReader(
        service.port,
        f"/v1/agents/{extension}/events",
        {"Authorization": f"Bearer {API_TOKEN}", **headers},
    )


def post_event(service: Service, params: dict[str, str]) -> httpx.Response:
    """One PBX event to ``service``'s ingress."""
    return httpx.get(
        f"{service.url}/pbx/events", params={**params, "token": INGRESS_TOKEN}, timeout=30
    )


def pop_states(reader: SseReader, call_id: str) -> list[str]:
    """The states of the pops ``reader`` got for ``call_id``, in order."""
    return [
        m.json()["state"]
        for m in reader.events()
        if m.event == "pop" and m.json()["call"]["user_call_id"] == call_id
    ]


@dataclass
class Sentinels:
    """``redis-server --sentinel`` processes watching one master as ``SERVICE``."""

    ports: list[int]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    def url(self, query: str = "") -> str:
        """The journal URL naming these Sentinels (``redis+sentinel://``)."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0{'?' + query if query else ''}"

    def master_port(self) -> int | None:
        """The master's port according to the first Sentinel that answers."""
        for port in self.ports:
            try:
                with redis.Redis(host="127.0.0.1", port=port, decode_responses=True) as client:
                    address = client.sentinel_get_master_addr_by_name(SERVICE)
                    return int(address[1]) if address else None
            except redis.RedisError:
                continue
        return None

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(30)


#: The name the Sentinels know the master by (the URL's service).
SERVICE = "callbridge"


def start_sentinels(directory: Path, master_port: int, count: int = 3) -> Sentinels:
    """``count`` Sentinels (quorum 2) with short timeouts, so a failover takes seconds."""
    binary = find_binary("redis-server")
    assert binary is not None
    sentinels = Sentinels([])
    for index in range(count):
        home = directory / f"sentinel{index}"
        home.mkdir(parents=True)
        port = free_port()
        config = home / "sentinel.conf"  # Sentinel rewrites its file: one each, writable
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {home}\nlogfile {home / 'sentinel.log'}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        sentinels.ports.append(port)
        sentinels.processes.append(
            subprocess.Popen(
                [binary, str(config), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    wait_until(lambda: sentinels.master_port() == master_port, "the Sentinels to answer")
    return sentinels


def replication_up(server: RedisServer) -> bool:
    """Whether ``server`` is a replica in sync with its master."""
    try:
        with server.client() as client:
            info = client.info("replication")
    except redis.RedisError:
        return False
    return info.get("role") == "slave" and info.get("master_link_status") == "up"


@dataclass
class Cluster:
    """One redis-server, one ``--role engine`` and two ``--role http`` services on it."""

    redis: RedisServer
    engine: Service
    first: Service
    second: Service
    started: list[Service] = field(default_factory=list)

    def start(self) -> None:
        """Start the engine, then both HTTP services (each waits until ready)."""
        for service in (self.engine, self.first, self.second):
            self.started.append(service.start())


@contextlib.contextmanager
def cluster(tmp_path: Path, prefix: str, **http_env: str) -> Iterator[Cluster]:
    """A ``Cluster`` not started yet (its services' environments may still change);
    everything started is stopped on exit (a killed service is left as it is)."""
    need_redis()
    redis = start_redis(tmp_path / "redis")
    journal = redis.url(prefix)
    running = Cluster(
        redis,
        role_service(tmp_path / "engine", journal, "engine"),
        role_service(tmp_path / "http1", journal, "http", **http_env),
        role_service(tmp_path / "http2", journal, "http", **http_env),
    )
    try:
        yield running
    finally:
        for service in reversed(running.started):
            service.stop()
        redis.stop()
