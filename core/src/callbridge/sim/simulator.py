"""The embeddable simulated PBX: the call engine plus its SOAP server and real time.

    with Simulator(sink=HttpSink("http://127.0.0.1:8765/pbx/events", token="t")) as sim:
        client = SoapClient(sim.pbx_settings(...))   # sim.url is the SOAP endpoint
        call = sim.incoming_call("+39 06 1234 5678", "201", caller_name="Anna Neri")
        sim.answer(call)
        sim.hangup(call, by="remote")

The same server answers GET at the path of ``settings.seri_url`` as the integration module's
``seri_endpoint.php`` (``sim.seri``), with ``settings.seri_token``; ``dialect="seri"`` sends
the events in that module's dialect too.

The SOAP server is a threaded stdlib HTTP server on its own thread (port 0 picks a free
port): no event loop to share with whoever embeds it. Events go through a ``QueuedSink`` by
default, so a SOAP request returns without waiting on the event receiver; ``flush()`` waits
until they are delivered. Pass ``queue_events=False`` to deliver inline (deterministic tests).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import SecretStr

from ..lifecycle import Startable
from ..settings import PbxSettings
from .emitter import EventSink, MemorySink, QueuedSink
from .engine import CallEngine, ExtReading, GroupEnd, SimCall, SimError
from .model import DEFAULT_PASSWORD, Directory, User, default_directory, md5_hex
from .scheduler import Scheduler
from .seri import SeriService
from .soap_server import MAX_BODY, SoapLogEntry, SoapService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboundPolicy:
    """What the remote party of a call placed through SOAP does, in real time.

    ``answer_after`` None: it never answers (the call rings until the user gives up, or
    ``give_up_after``); ``reject``: it refuses after ``answer_after``; ``hangup_after``: it
    hangs up that long after answering (None: the user has to).
    """

    answer_after: float | None = 2.0
    hangup_after: float | None = 8.0
    reject: bool = False
    give_up_after: float | None = 30.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    service: SoapService
    path: str
    seri: SeriService
    seri_path: str


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        log.debug("soap %s - " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.rstrip("/") != self.server.seri_path.rstrip("/"):
            self._send(405, b"POST SOAP requests here\n", "text/plain; charset=utf-8")
            return
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        status, answer = self.server.seri.handle(query)
        self._send(status, answer, "text/xml; charset=utf-8")

    def do_POST(self) -> None:
        if urlsplit(self.path).path.rstrip("/") != self.server.path.rstrip("/"):
            self._send(404, b"not the SOAP endpoint\n", "text/plain; charset=utf-8")
            return
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._send(413, b"request too large\n", "text/plain; charset=utf-8")
            return
        body = self.rfile.read(length)
        status, answer = self.server.service.handle(body, self.headers.get("SOAPAction"))
        self._send(status, answer, "text/xml; charset=utf-8")


class Simulator(CallEngine, Startable):
    """A simulated VOIspeed PBX: call engine, SOAP endpoint, event sink, real-time policy."""

    def __init__(
        self,
        *,
        sink: EventSink | None = None,
        settings: PbxSettings | None = None,
        directory: Directory | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        queue_events: bool = True,
        outbound: OutboundPolicy | None = None,
        ext_reading: ExtReading = "extension",
        group_end: GroupEnd = 20,
        dialect: Literal["soap", "seri"] = "soap",
    ) -> None:
        self.settings = settings or PbxSettings()
        directory = directory or default_directory()
        _ensure_integration_user(directory, self.settings)
        self.inner_sink: EventSink = sink if sink is not None else MemorySink()
        emit_to: EventSink = QueuedSink(self.inner_sink) if queue_events else self.inner_sink
        super().__init__(
            directory,
            emit_to,
            company_param=self.settings.company_param,
            ext_reading=ext_reading,
            group_end=group_end,
            dialect=dialect,
            seri=self.settings.seri,
        )
        self.service = SoapService(self, self.settings)
        #: The integration module's command endpoint (``seri_endpoint.php``).
        self.seri = SeriService(self, self.settings)
        self.outbound = outbound
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._scheduler: Scheduler | None = None
        if outbound is not None:
            self.outgoing_listeners.append(self._apply_policy)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Simulator:
        """Start the SOAP server (and the scheduler); returns self."""
        if self._server is not None:
            return self
        server = _Server((self._host, self._port), _Handler)
        server.service = self.service
        server.path = urlsplit(self.settings.soap_url).path or "/"
        server.seri = self.seri
        server.seri_path = urlsplit(self.settings.seri_url).path or "/"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="sim-soap", kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the server and the scheduler; deliver queued events; close the sink."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        self.sink.close()

    @property
    def scheduler(self) -> Scheduler:
        """The real-time scheduler, started on first use."""
        if self._scheduler is None:
            self._scheduler = Scheduler()
        return self._scheduler

    # ------------------------------------------------------------------ what others need

    @property
    def port(self) -> int:
        """The port the SOAP server listens on (after ``start``)."""
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The SOAP endpoint URL, e.g. ``http://127.0.0.1:41234/soap``."""
        path = urlsplit(self.settings.soap_url).path or "/"
        return f"http://{self._host}:{self.port}{path}"

    @property
    def seri_url(self) -> str:
        """The integration module's endpoint, e.g. ``http://127.0.0.1:41234/PBX/seri_endpoint.php``."""
        path = urlsplit(self.settings.seri_url).path or "/"
        return f"http://{self._host}:{self.port}{path}"

    def pbx_settings(
        self, user: str = "auth-callbridge@acme", password: str = DEFAULT_PASSWORD
    ) -> PbxSettings:
        """Client settings that reach this simulator (same namespaces, its URL, credentials)."""
        return self.settings.model_copy(
            update={
                "soap_url": self.url,
                "seri_url": self.seri_url,
                "user": user,
                "password": SecretStr(password),
            }
        )

    @property
    def soap_log(self) -> list[SoapLogEntry]:
        """Every SOAP request received, in order (commands, fields, fault or response)."""
        return list(self.service.log)

    @property
    def memory(self) -> MemorySink:
        """The MemorySink events go to (when the simulator was built with one)."""
        if not isinstance(self.inner_sink, MemorySink):
            raise TypeError(f"events go to {self.inner_sink!r}, not a MemorySink")
        return self.inner_sink

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every event emitted so far was handed to the sink."""
        if isinstance(self.sink, QueuedSink):
            self.sink.flush(timeout)

    # ------------------------------------------------------------------ real time

    def _apply_policy(self, call: SimCall) -> None:
        policy = self.outbound
        if policy is None or call.caller_leg is None:
            return
        if call.caller_leg.remote.user is not None or len(call.legs) > 1:
            return  # an internal callee answers by itself (or through the API)
        if policy.answer_after is not None:
            action = self.reject if policy.reject else self.answer
            self.later(policy.answer_after, lambda: action(call))
            if not policy.reject and policy.hangup_after is not None:
                total = policy.answer_after + policy.hangup_after
                self.later(total, lambda: self.hangup(call, by="remote"))
        elif policy.give_up_after is not None:
            self.later(policy.give_up_after, lambda: self.hangup(call, by="local"))

    def later(self, delay: float, action: Callable[[], object]) -> None:
        """Run an engine action after ``delay`` seconds; a SimError (state moved on) is ignored."""

        def run() -> None:
            try:
                action()
            except SimError as exc:
                log.debug("scheduled action skipped: %s", exc)

        self.scheduler.call_later(delay, run)


def _ensure_integration_user(directory: Directory, settings: PbxSettings) -> None:
    """Make the settings' user and hash valid credentials, so both sides share one config."""
    if not settings.user:
        return
    digest = settings.password_hash()
    existing = directory.user_by_login(settings.user)
    if existing is not None:
        if digest is not None:
            index = directory.users.index(existing)
            directory.users[index] = dataclasses.replace(existing, password_md5=SecretStr(digest))
        return
    if digest is None:
        digest = md5_hex(DEFAULT_PASSWORD)
    next_id = max((u.id for u in directory.users), default=0x64) + 1
    extensions = {u.extension for u in directory.users}
    extension = next(str(n) for n in range(900, 10_000) if str(n) not in extensions)
    name = settings.user.partition("-")[2].partition("@")[0] or "integration"
    company = directory.users[0].company_id if directory.users else 1
    directory.add_user(
        User(
            next_id, name, "Integration", "IT", extension, company, settings.user, SecretStr(digest)
        )
    )
