"""Constants and settings shared by the HTTP service tests."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callbridge.settings import Settings
from callbridge.testing import ServerThread, bind_socket, wait_until

INGRESS_TOKEN = "ingress-token-0123456789"
API_TOKEN = "api-token-for-201-0123456789"
ADMIN_TOKEN = "api-token-for-all-0123456789"


def make_settings(tmp_path: Path, **server: object) -> Settings:
    """Settings with an ingress token, two API tokens and two agents."""
    return Settings(
        data_dir=tmp_path,
        ingress_token=INGRESS_TOKEN,  # type: ignore[arg-type]
        server={  # type: ignore[arg-type]
            "api_tokens": [f"{API_TOKEN}:201", f"{ADMIN_TOKEN}:*"],
            **server,
        },
        pbx={"agents": ["201=auth-mario@acme", "202=auth-luigi@acme"]},  # type: ignore[arg-type]
    )


# --- real HTTP in-process: uvicorn in a thread, an SSE reader ---------------------------------


class LiveServer:
    """An ASGI app served by the kit's ``ServerThread`` on a free loopback port.

    Streams need a real socket: the TestClient buffers a streaming body until it ends. The
    socket is bound first, so the port is known before the app (which may need it) is built.
    """

    def __init__(self) -> None:
        self._sock = bind_socket()
        self.port: int = self._sock.getsockname()[1]
        self._thread: ServerThread | None = None

    def serve(self, app: Any) -> LiveServer:
        """Serve ``app`` (use the result as a context manager to stop it)."""
        self._thread = ServerThread(app, port=self.port, graceful=2).start(sock=self._sock)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._thread.stop(timeout=15)
        self._sock.close()


@dataclass
class SseMessage:
    """One Server-Sent Events message (or a comment, with ``comment`` set)."""

    id: int | None = None
    event: str | None = None
    data: str = ""
    comment: str | None = None

    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.data)
        return value


@dataclass
class SseReader:
    """Reads an SSE stream in a thread; ``messages`` grows as they arrive.

    http.client decodes the chunked body; ``close`` shuts the socket down, which ends the
    reading thread.
    """

    port: int
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    body: bytes = b""
    messages: list[SseMessage] = field(default_factory=list)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise AssertionError("no response headers from the stream")

    def _run(self) -> None:
        try:
            self._conn.request("GET", self.path, headers=self.headers)
            response = self._conn.getresponse()
            self.status = response.status
            if response.status != 200:
                self.body = response.read()
                self._ready.set()
                return
            self._ready.set()
            current = SseMessage()
            while True:
                raw = response.readline()
                if not raw:
                    return
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if current.data or current.id is not None or current.event:
                        with self._lock:
                            self.messages.append(current)
                    current = SseMessage()
                elif line.startswith(":"):
                    with self._lock:
                        self.messages.append(SseMessage(comment=line[1:].strip()))
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "id":
                        current.id = int(value)
                    elif name == "event":
                        current.event = value
                    elif name == "data":
                        current.data = f"{current.data}\n{value}" if current.data else value
        except BaseException as exc:  # the socket shut down by close(), or a real failure
            self.error = exc
        finally:
            self._ready.set()

    def events(self) -> list[SseMessage]:
        """The messages with an id (not comments), in order."""
        with self._lock:
            return [m for m in self.messages if m.comment is None]

    def comments(self) -> list[str]:
        with self._lock:
            return [m.comment for m in self.messages if m.comment is not None]

    def wait_for(
        self, condition: Callable[[list[SseMessage]], bool], what: str, timeout: float = 30.0
    ) -> list[SseMessage]:
        wait_until(lambda: condition(self.events()), what, timeout)
        return self.events()

    def close(self) -> None:
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)
        self._conn.close()


@dataclass
class Stack:
    """The whole service in this process over real HTTP, with the simulator as the PBX.

    Simulator (SOAP endpoint; its events go by HTTP GET to the app's ``/pbx/events``) ->
    app (uvicorn thread) -> real SqliteJournal -> real Engine -> ``directory`` plugin.
    """

    live: LiveServer
    sim: Any
    journal: Any
    engine: Any
    directory: Any
    http: Any

    def api(self, token: str = API_TOKEN) -> dict[str, str]:
        """Headers of an API request with ``token``."""
        return {"Authorization": f"Bearer {token}"}

    def pbx_event(self, params: dict[str, str]) -> Any:
        """One GET on /pbx/events with the ingress token, as the PBX's trigger sends it."""
        return self.http.get("/pbx/events", params={**params, "token": INGRESS_TOKEN})

    def commands(self) -> list[Any]:
        """The SOAP requests the simulator received, in order."""
        return list(self.sim.soap_log)


def call_state(stack: Stack, external_id: str, token: str = API_TOKEN) -> dict[str, Any]:
    """``GET /v1/calls/{external_id}``'s answer (asserted 200)."""
    response = stack.http.get(f"/v1/calls/{external_id}", headers=stack.api(token))
    assert response.status_code == 200, response.text
    value: dict[str, Any] = response.json()
    return value


def wait_call_state(
    stack: Stack, external_id: str, wanted: str, token: str = API_TOKEN
) -> dict[str, Any]:
    """Wait until the placed call's state is ``wanted`` (events flushed first); return it."""
    stack.sim.flush()
    wait_until(lambda: call_state(stack, external_id, token)["state"] == wanted, f"state {wanted}")
    return call_state(stack, external_id, token)


#: The simulator's company (docs/simulator.md): extension -> PBX login.
SIM_AGENTS = ["201=auth-mario@acme", "202=auth-giulia@acme", "203=auth-luca@acme"]


def stack_settings(
    tmp_path: Path, pbx: Any, pbx_overrides: dict[str, Any] | None = None, **server: object
) -> Settings:
    """Settings for a Stack: tokens, the simulator's agents, only the directory plugin."""
    return Settings(
        data_dir=tmp_path,
        ingress_token=INGRESS_TOKEN,  # type: ignore[arg-type]
        connectors=["directory"],
        server={  # type: ignore[arg-type]
            "api_tokens": [f"{API_TOKEN}:201", f"{ADMIN_TOKEN}:*"],
            **server,
        },
        pbx=type(pbx).model_validate(
            {**pbx.model_dump(), "agents": SIM_AGENTS, **(pbx_overrides or {})}
        ),
        dispatch={"workers": 2, "backoff_initial": 0.01, "backoff_max": 0.05},  # type: ignore[arg-type]
        tracker={"group_window": 0.0},  # type: ignore[arg-type]
    )


@contextlib.contextmanager
def run_stack(tmp_path: Path, pbx: dict[str, Any] | None = None, **server: object) -> Any:
    """Start a Stack; everything is stopped and closed on exit."""
    import httpx

    from callbridge.engine.engine import Engine
    from callbridge.journal.sqlite import SqliteJournal
    from callbridge.plugins.manager import load_plugins
    from callbridge.server.app import create_app
    from callbridge.server.services import Services
    from callbridge.sim import HttpSink, Simulator
    from callbridge.voispeed.soap import SoapClient

    live = LiveServer()
    sink = HttpSink(f"{live.url}/pbx/events", token=INGRESS_TOKEN)
    with Simulator(sink=sink) as sim:
        settings = stack_settings(tmp_path, sim.pbx_settings(), pbx, **server)
        journal = SqliteJournal(tmp_path / "journal.sqlite3")
        plugins = load_plugins(settings, entry_points=False)
        directory = plugins.get("directory").plugin
        pbx = SoapClient(settings.pbx, sleep=lambda _s: None)
        engine = Engine(settings, journal=journal, plugins=plugins, pbx=pbx, tick_interval=0.05)
        services = Services(
            settings=settings, journal=journal, pbx=pbx, plugins=plugins, engine=engine
        )
        engine.start()
        try:
            with (
                live.serve(create_app(services)),
                httpx.Client(base_url=live.url, timeout=30) as http,
            ):
                yield Stack(live, sim, journal, engine, directory, http)
                sim.flush()
        finally:
            engine.stop()
            plugins.shutdown(None)
            pbx.close()
            journal.close()
