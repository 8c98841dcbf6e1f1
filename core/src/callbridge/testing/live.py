"""callbridge as ``callbridge serve`` runs it, live in the test's process, and an SSE reader.

End-to-end tests need the real thing on a real port: a simulator (or a CRM's softphone page)
talks HTTP to it, and a restart must look like a restart from the outside (same port, same
data directory, connections refused while it is down). ``LiveService`` builds what the
command builds (settings from the environment, ``assemble``, ``create_app(...,
manage_engine=True)``) and serves it with ``ServerThread``, while keeping the journal, the
engine and the plugins within the test's reach. ``SseReader`` reads an agent's stream the way
a browser's EventSource does, in a thread, so a test waits for the pops it expects instead of
sleeping.
"""

from __future__ import annotations

import contextlib
import errno
import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..assembly import Assembly, EngineMode, assemble
from ..journal.base import Delivery, Journal
from ..lifecycle import Startable
from ..models import Call
from ..server.app import create_app
from ..server.thread import ServerThread, bind_socket
from ..settings import Settings, load_settings
from .wait import wait_until

#: ``ServerThread`` and ``bind_socket`` are re-exported for tests that serve an app of their own.
__all__ = [
    "LiveService",
    "ServerThread",
    "SseMessage",
    "SseReader",
    "bind_socket",
    "pops_of",
]

_POLL = 0.05


def _bind(host: str, port: int, timeout: float) -> socket.socket:
    """Bind ``host:port``, retrying while the port is still in use (a restart's old socket).

    ``port=0`` never conflicts: the kernel picks a port nobody holds and the socket keeps it.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return bind_socket(host, port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or port == 0 or time.monotonic() > deadline:
                raise
        time.sleep(_POLL)


class LiveService(Startable):
    """The HTTP service and its engine on a real port; ``start``, ``stop``, ``restart``.

    The port is bound when the object is made (``port=0``: a free one, no race with other
    tests), so ``url`` can go into the settings of a simulator before ``start``; the bound
    socket is handed to uvicorn. ``stop`` releases the port like a stopped process would;
    ``start`` binds it again (waiting while it is still in use) and reads the settings again,
    so environment changes between runs apply as they would to a restarted ``callbridge
    serve``. The engine runs in this process (``engine_mode="thread"``) so that
    ``wait_idle`` and the journal can be reached directly.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        settings: Callable[[], Settings] = load_settings,
        extra_plugins: Sequence[object] = (),
        engine_mode: EngineMode = "thread",
        bind_timeout: float = 30.0,
    ) -> None:
        self.host = host
        self._load_settings = settings
        self._extra_plugins = tuple(extra_plugins)
        self._engine_mode: EngineMode = engine_mode
        self._bind_timeout = bind_timeout
        self._sock: socket.socket | None = _bind(host, port, bind_timeout)
        #: The port served: the same for every run of this object.
        self.port = int(self._sock.getsockname()[1])
        #: ``http://host:port``, known before ``start``.
        self.url = f"http://{host}:{self.port}"
        self._server: ServerThread | None = None
        self._running: Assembly | None = None

    @property
    def started(self) -> bool:
        """Serving right now."""
        return self._server is not None

    @property
    def running(self) -> Assembly:
        """What ``assemble`` made for the current run (journal, plugins, engine, PBX client)."""
        if self._running is None:
            raise RuntimeError("the service is not started")
        return self._running

    @property
    def journal(self) -> Journal:
        """The current run's journal."""
        return self.running.services.journal

    def plugin_states(self) -> dict[str, str]:
        """Plugin name -> state (``active``, ``disabled``, ...), as ``callbridge plugins``."""
        plugins = self.running.services.plugins
        if plugins is None:
            return {}
        return {info.name: info.state for info in plugins.infos}

    def start(self, timeout: float = 30.0) -> LiveService:
        """Read the settings, build everything, serve; return once uvicorn accepts."""
        if self._server is not None:
            raise RuntimeError(f"the service on port {self.port} is already started")
        running = assemble(
            self._load_settings(), extra_plugins=self._extra_plugins, engine_mode=self._engine_mode
        )
        try:
            app = create_app(running.services, manage_engine=True)
            sock, self._sock = self._sock, None
            if sock is None:
                sock = _bind(self.host, self.port, self._bind_timeout)
            server = ServerThread(app, host=self.host, port=self.port)
            server.start(timeout, sock=sock)  # the server's thread owns and closes the socket
        except BaseException:
            running.close()
            raise
        running.start_sources()
        self._server, self._running = server, running
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving (the lifespan stops the engine), then close the PBX client and journal.

        Raises ``RuntimeError`` if uvicorn is still running after a forced exit: a test must
        not go on against a service it believes stopped.
        """
        server, running = self._server, self._running
        self._server = self._running = None
        if self._sock is not None:  # bound but never served: release the port
            self._sock.close()
            self._sock = None
        try:
            if server is not None and not server.stop(timeout):
                raise RuntimeError(f"uvicorn on port {self.port} did not stop")
        finally:
            if running is not None:
                running.close()

    def restart(self, timeout: float = 30.0) -> LiveService:
        """``stop`` then ``start``: same port, same data directory, fresh settings."""
        self.stop(timeout)
        return self.start(timeout)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Every journaled event handled and no delivery due; False on timeout."""
        return self.running.local_engine.wait_idle(timeout)

    def call_of(self, extension: str, timeout: float = 30.0) -> Call:
        """The one call of ``extension`` in the journal, once the engine has recorded it."""

        def calls() -> list[Call]:
            return [c for c in self.journal.list_calls(50) if c.extension == extension]

        wait_until(calls, f"the call of {extension}", timeout)
        found = calls()
        assert len(found) == 1, found
        return found[0]

    def delivery_of(self, call_key: str, plugin: str, timeout: float = 30.0) -> Delivery:
        """The one ``plugin`` delivery of a call, once the engine has enqueued it."""

        def deliveries() -> list[Delivery]:
            found = self.journal.list_deliveries(call_keys=[call_key])
            return [d for d in found if d.plugin == plugin]

        wait_until(deliveries, f"the {plugin} delivery of {call_key}", timeout)
        (delivery,) = deliveries()
        return delivery

    def api(self, token: str) -> httpx.Client:
        """An HTTP client on the service with ``Authorization: Bearer <token>``."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30.0,
            trust_env=False,  # the service is on loopback: no proxy from the environment
        )

    def __repr__(self) -> str:
        state = "started" if self.started else "stopped"
        return f"LiveService({self.url}, {state})"


@dataclass(frozen=True)
class SseMessage:
    """One message of an agent stream: its journal id, its kind (``pop``, ``call``) and data."""

    id: int | None
    event: str
    data: dict[str, Any]


def pops_of(messages: Sequence[SseMessage], user_call_ids: set[str]) -> list[SseMessage]:
    """The pop messages of the given user calls (the PBX's call ids), in order: several
    tests share one stream, each looks only at its own calls."""
    return [
        m
        for m in messages
        if m.event == "pop" and str(m.data["call"]["user_call_id"]) in user_call_ids
    ]


class SseReader(Startable):
    """Reads ``/v1/agents/{extension}/events`` in a thread and keeps every message.

    The token goes as ``Authorization: Bearer`` or, with ``query_token=True``, as the
    ``access_token`` query parameter (what the panel's EventSource sends). ``last_event_id``
    asks for the messages after that id to be replayed first. ``start`` (or ``with``) returns
    once the server's first comment arrived: from then on nothing the agent is sent is missed.
    """

    def __init__(
        self,
        base_url: str,
        extension: str,
        token: str,
        *,
        query_token: bool = False,
        last_event_id: int | None = None,
    ) -> None:
        self.url = f"{base_url}/v1/agents/{extension}/events"
        self._headers = {"Accept": "text/event-stream"}
        self._params: dict[str, str] = {}
        if query_token:
            self._params["access_token"] = token
        else:
            self._headers["Authorization"] = f"Bearer {token}"
        if last_event_id is not None:
            self._headers["Last-Event-ID"] = str(last_event_id)
        self._messages: list[SseMessage] = []
        self._cond = threading.Condition()
        self._connected = False
        self._ended = False
        self._closed = False
        self._error: BaseException | None = None
        self._socket: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name=f"sse-{extension}", daemon=True)

    def start(self, timeout: float = 30.0) -> SseReader:
        """Connect; wait until the stream is live (AssertionError naming the cause if not)."""
        self._thread.start()
        with self._cond:
            self._cond.wait_for(lambda: self._connected or self._ended, timeout)
            if not self._connected:
                cause = self._error or ("the stream ended" if self._ended else "timed out")
                raise AssertionError(f"no SSE connection to {self.url}: {cause!r}")
        return self

    def events(self) -> list[SseMessage]:
        """The messages received so far, in order."""
        with self._cond:
            return list(self._messages)

    def wait_for(
        self,
        predicate: Callable[[list[SseMessage]], bool],
        what: str,
        timeout: float = 30.0,
    ) -> list[SseMessage]:
        """Wait until ``predicate(messages)`` holds and return the messages.

        AssertionError naming ``what`` (and what did arrive) on timeout, or at once when the
        stream failed or ended first: nothing more can arrive then.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self._messages)):
                if self._ended:
                    cause = f"failed: {self._error!r}" if self._error else "ended"
                    raise AssertionError(
                        f"the stream {cause} while waiting for {what}; got {self._messages}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout:.0f}s waiting for {what}; got {self._messages}"
                    )
                self._cond.wait(min(remaining, 1.0))
            return list(self._messages)

    def close(self) -> None:
        """Drop the connection and let the reading thread end."""
        with self._cond:
            self._closed = True
            sock = self._socket
        if sock is not None:  # unblocks the thread's read at once, unlike closing the response
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def stop(self) -> None:
        """``close`` (so that ``with`` closes the stream)."""
        self.close()

    def __repr__(self) -> str:  # the token stays out of test output
        return f"SseReader({self.url}, {len(self._messages)} messages)"

    def _run(self) -> None:
        timeout = httpx.Timeout(10.0, read=None)  # heartbeats may be minutes apart
        try:
            with (
                httpx.Client(timeout=timeout, trust_env=False) as client,
                client.stream("GET", self.url, headers=self._headers, params=self._params) as r,
            ):
                stream = r.extensions.get("network_stream")
                with self._cond:
                    self._socket = stream.get_extra_info("socket") if stream else None
                    closed = self._closed
                if closed:
                    return
                r.raise_for_status()
                self._read(r)
        except BaseException as exc:  # reported by start() and wait_for(), not lost
            with self._cond:
                if not self._closed:
                    self._error = exc
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _read(self, response: httpx.Response) -> None:
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line.startswith(":"):
                if not self._connected:
                    with self._cond:
                        self._connected = True
                        self._cond.notify_all()
                continue
            if line == "":
                if "data" in fields:
                    self._add(fields)
                fields = {}
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data" and "data" in fields:
                fields["data"] += "\n" + value
            else:
                fields[name] = value

    def _add(self, fields: dict[str, str]) -> None:
        raw_id = fields.get("id")
        message = SseMessage(
            id=int(raw_id) if raw_id else None,
            event=fields.get("event", "message"),
            data=json.loads(fields["data"]),
        )
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()
