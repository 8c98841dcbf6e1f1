"""``callbridge serve`` as a real process on a free port, for the service tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from server_support import ADMIN_TOKEN, API_TOKEN, INGRESS_TOKEN, wait_until

CALLBRIDGE = str(Path(sys.executable).with_name("callbridge"))


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a service: no inherited CALLBRIDGE_*, tokens, only ``directory``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "CALLBRIDGE_DATA_DIR": str(data_dir),
            "CALLBRIDGE_INGRESS_TOKEN": INGRESS_TOKEN,
            "CALLBRIDGE_SERVER__API_TOKENS": f"{API_TOKEN}:201,{ADMIN_TOKEN}:*",
            "CALLBRIDGE_SERVER__HEARTBEAT": "0.3",
            "CALLBRIDGE_CONNECTORS": "directory",
            "CALLBRIDGE_TRACKER__GROUP_WINDOW": "0",
            "CALLBRIDGE_DISPATCH__BACKOFF_INITIAL": "0.05",
            "CALLBRIDGE_DISPATCH__BACKOFF_MAX": "0.2",
            "CALLBRIDGE_PBX__AGENTS": "201=auth-mario@acme,202=auth-giulia@acme",
        }
    )
    env.update(extra)
    return env


class Service:
    """One ``callbridge serve`` process; ``start`` waits until ``/healthz`` answers."""

    #: The ``callbridge`` command to run (another virtual environment's, in tests/dist/).
    executable = CALLBRIDGE

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.env = service_env(data_dir, **env)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "serve.log"
        #: Extra command-line arguments for ``callbridge serve`` (``--source ...``).
        self.start_args: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Service:
        """Start and wait until ready; another port if something took this one meanwhile.

        ``free_port`` only finds a port that is free *now*: another process on a busy CI
        machine may bind it before the service does, which is no fault of the service.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):
            mark = self.log.stat().st_size if self.log.exists() else 0
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(
                    [
                        self.executable,
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(self.port),
                        *self.start_args,
                    ],
                    cwd=self.data_dir,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                wait_until(self._healthy, f"callbridge serve on {self.url} ({self.log})", timeout)
            except AssertionError:
                if "address already in use" not in self.output()[mark:]:
                    raise
                self.port = free_port()
                continue
            return self
        raise AssertionError(f"no free port for callbridge serve after 5 attempts ({self.log})")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"serve exited {self.process.returncode}: {self.output()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 30.0) -> int:
        """Ctrl-C (SIGINT) and wait: a clean shutdown."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"serve did not stop on SIGINT: {self.output()}") from None

    def kill(self) -> None:
        """kill -9."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def cli(self, *args: str) -> Any:
        """Run ``callbridge <args>`` with this service's environment."""
        return subprocess.run(
            [self.executable, *args],
            cwd=self.data_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def raw_get(port: int, target: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """A GET with the request target exactly as given (raw bytes, no client-side checks)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    answer = b"".join(chunks)
    status_line = answer.split(b"\r\n", 1)[0]
    return int(status_line.split()[1]), answer.partition(b"\r\n\r\n")[2]


def call_events(call_id: str, ext: str = "201", end: str = "21") -> list[dict[str, str]]:
    """16, 18 and an end (20 or 21): 0612345678 calls ``ext``, who answers."""
    base = {"call_id": call_id, "company_id": "1", "sender_type": "0"}
    number = "0612345678"
    return [
        {**base, "ssn_event": "16", "number": number, "ext": ext},
        {**base, "ssn_event": "18", "number": ext, "ext": number},
        {**base, "ssn_event": end, "number": number, "ext": ext},
    ]
