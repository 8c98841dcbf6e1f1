"""callbridge as ``callbridge serve`` runs it, in this process, for the HubSpot end-to-end tests.

``Service`` does what the command does (settings from the environment, ``build`` with the
entry-point plugins, ``create_app`` with the engine in its lifespan, uvicorn on a real port)
and can be stopped and started again on the same port and data directory: a restart, as a
simulator pointed at that port sees it. ``SseReader`` reads an agent's Server-Sent Events
stream over real HTTP in a thread until the message a test waits for arrives.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn

from callbridge.journal.base import Journal
from callbridge.server.app import create_app
from callbridge.server.assemble import Running, build
from callbridge.settings import load_settings

INGRESS_TOKEN = "e2e-ingress-token-0123456789"
API_TOKEN = "e2e-api-token-0123456789"


def free_port() -> int:
    """A port nobody listens on now (the service binds it, and binds it again on restart)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


class Service:
    """The HTTP service and its engine on ``127.0.0.1:port``; ``start``/``stop`` repeatable."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._running: Running | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> Running:
        """What ``build`` made for the current run."""
        if self._running is None:
            raise RuntimeError("the service is not started")
        return self._running

    @property
    def journal(self) -> Journal:
        """The current run's journal."""
        return self.running.services.journal

    def plugin_states(self) -> dict[str, str]:
        """Plugin name -> state, as ``callbridge plugins`` shows them."""
        plugins = self.running.services.plugins
        assert plugins is not None
        return {info.name: info.state for info in plugins.infos}

    def start(self) -> None:
        """Read the settings from the environment, build everything, serve; wait until up."""
        settings = load_settings()
        running = build(settings)
        app = create_app(running.services, manage_engine=True)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"uvicorn-{self.port}", daemon=True)
        self._running, self._server, self._thread = running, server, thread
        thread.start()
        wait_for(lambda: server.started or not thread.is_alive(), "uvicorn to start")
        if not server.started:
            running.close()
            raise RuntimeError(f"uvicorn did not start on port {self.port}")

    def stop(self) -> None:
        """Stop serving (the lifespan stops the engine), then close the PBX client and journal."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
            assert not self._thread.is_alive(), "uvicorn did not stop"
        if self._running is not None:
            self._running.close()
        self._server = self._thread = self._running = None

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Every journaled event handled and no delivery due (later retries do not count)."""
        assert self.running.engine.wait_idle(timeout), "the engine did not become idle"

    def api(self) -> httpx.Client:
        """An API client with a token that may act for every agent."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30.0
        )


class SseReader:
    """Reads ``/v1/agents/{extension}/events`` in a thread until ``until`` matches a message."""

    def __init__(
        self, base_url: str, extension: str, until: Callable[[dict[str, Any]], bool]
    ) -> None:
        self.messages: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self.error: BaseException | None = None
        self._url = f"{base_url}/v1/agents/{extension}/events"
        self._until = until
        self._thread = threading.Thread(target=self._run, name=f"sse-{extension}", daemon=True)

    def __enter__(self) -> SseReader:
        self._thread.start()
        assert self.connected.wait(30), f"no SSE connection ({self.error!r})"
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def result(self, timeout: float = 30.0) -> dict[str, Any]:
        """The message that matched (waits for it)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"no matching SSE message; got {self.messages}"
        assert self.error is None, f"SSE reader failed: {self.error!r}"
        return self.messages[-1]

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {API_TOKEN}", "Accept": "text/event-stream"}
        timeout = httpx.Timeout(60.0, connect=10.0)
        try:
            with (
                httpx.Client(timeout=timeout) as client,
                client.stream("GET", self._url, headers=headers) as response,
            ):
                response.raise_for_status()
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.connected.set()
                    if not line.startswith("data:"):
                        continue
                    message = json.loads(line[5:])
                    self.messages.append(message)
                    if self._until(message):
                        return
        except BaseException as exc:
            self.error = exc
        finally:
            self.connected.set()
