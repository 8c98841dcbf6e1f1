"""Private redis-server processes for the Redis journal tests and the benchmark.

Each server gets its own directory, a free port on 127.0.0.1, no RDB snapshots and an
append-only file fsynced on every write (``appendfsync always``): the configuration the
journal documents as durable. ``start_redis`` waits until PING answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from callbridge.journal.base import Journal
from callbridge.testing.services import find_binary, skip_reason

REQUIRE_ENV = "CALLBRIDGE_TEST_REQUIRE_SERVICES"


def redis_binary() -> str | None:
    """The redis-server binary, or None when it is not installed."""
    return find_binary("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """A running redis-server; ``url(prefix)`` gives a journal URL with its own key prefix."""

    binary: str
    directory: Path
    port: int
    args: list[str]
    password: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def url(self, prefix: str | None = None, *, password: str | None = None) -> str:
        secret = password if password is not None else self.password
        auth = f":{secret}@" if secret else ""
        query = f"?prefix={prefix}" if prefix else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0{query}"

    def unique_url(self) -> str:
        """A URL with a fresh prefix, so tests sharing the server never see each other's keys."""
        return self.url(f"t{uuid.uuid4().hex[:12]}")

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, decode_responses=True
        )

    def start(self) -> None:
        log = self.directory / "redis.log"
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), *self.args, "--logfile", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with self.client() as probe:
                    probe.ping()
                return
            except redis.AuthenticationError:
                return  # it answers; the caller's password is tested elsewhere
            except redis.ConnectionError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise RuntimeError(f"redis-server did not start: {exc}\n{text}") from exc
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM and wait (Redis flushes its append-only file on a clean stop)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything that was not already fsynced."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(30)
        self.process = None


def start_redis(
    directory: Path,
    *,
    durable: bool = True,
    password: str | None = None,
    extra: list[str] | None = None,
) -> RedisServer:
    """Start a redis-server in ``directory`` (created) on a free port."""
    binary = redis_binary()
    if binary is None:
        raise RuntimeError("redis-server not found (install Debian's redis-server)")
    directory.mkdir(parents=True, exist_ok=True)
    args = ["--bind", "127.0.0.1", "--save", "", "--dir", str(directory)]
    args += (
        ["--appendonly", "yes", "--appendfsync", "always"] if durable else ["--appendonly", "no"]
    )
    if password:
        args += ["--requirepass", password]
    args += extra or []
    server = RedisServer(binary, directory, free_port(), args, password)
    server.start()
    return server


def require_redis() -> str | None:
    """None when redis-server exists; else the reason to skip (or fail in CI)."""
    reason = skip_reason("redis")
    if reason is None:
        return None
    if os.environ.get(REQUIRE_ENV) == "1":
        return reason + f" and {REQUIRE_ENV}=1"
    return reason


@dataclass
class Backend:
    """Opens journals on one storage (a SQLite file, or a Redis key prefix); closes them all."""

    name: str
    opener: Callable[[], Journal]
    opened: list[Journal] = field(default_factory=list)

    def open(self) -> Journal:
        journal = self.opener()
        self.opened.append(journal)
        return journal

    def close_all(self) -> None:
        for journal in self.opened:
            journal.close()
