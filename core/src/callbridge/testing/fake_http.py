"""``FakeHttpService``: the one base of the kit's fake HTTP services (a CRM, a webhook, a PBX).

Tests that check what callbridge sends need something real to send it to: a socket, real
HTTP (or HTTPS), real status codes. A fake describes only the service's wire format, in a
subclass's ``route`` (its routes, validation and error bodies); this base runs it on
``http(s)://127.0.0.1:<free port>`` in a daemon thread and adds what every such fake needs: a
log of the requests it was sent, and faults to inject (fail the next matching requests with a
status, a body and headers; carry a request out and then hang up without answering, the "did
it happen?" case; or carry it out and answer with the failure, a response lost on the way
back)::

    class FakeAcme(FakeHttpService):
        def route(self, request: FakeRequest) -> FakeAnswer:
            if request.line == "GET /v1/people":
                return FakeAnswer(200, {"data": [...]})
            raise CrmRefusal(404, {"error": "not found"})

    with FakeAcme(ssl_context=context) as acme:   # or .start() / .stop()
        acme.fail_next("POST /v1/calls", 429, {"error": "slow down"}, headers={"Retry-After": "2"})

The port is bound at construction, so ``url`` is known before ``start``. Pass an
``ssl.SSLContext`` (a ``trustme`` certificate for 127.0.0.1, say) to serve HTTPS.

``FakeCrm`` is the same class under its earlier name; passing a ``BaseHTTPRequestHandler``
class (``QuietHandler``) instead of overriding ``route`` is the earlier, deprecated way.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit

from ..lifecycle import Startable

__all__ = [
    "CrmRefusal",
    "FakeAnswer",
    "FakeCrm",
    "FakeHttpService",
    "FakeRequest",
    "Fault",
    "QuietHandler",
]


@dataclass
class FakeRequest:
    """One request as the fake received it (kept in ``FakeHttpService.requests``)."""

    method: str
    path: str
    query: dict[str, list[str]]
    #: The body: parsed JSON, a dict of form fields, the text of any other type, or None.
    body: Any
    #: Header names in lower case.
    headers: dict[str, str]
    #: The body as sent.
    raw: bytes = b""
    #: The query string as sent (without ``?``).
    query_string: str = ""
    at: float = field(default_factory=time.monotonic)

    @property
    def line(self) -> str:
        """``METHOD /path``."""
        return f"{self.method} {self.path}"

    @property
    def target(self) -> str:
        """``METHOD /path?query``: what faults match against."""
        return f"{self.line}?{self.query_string}" if self.query_string else self.line

    def arg(self, name: str, default: str = "") -> str:
        """The first value of a query parameter (or form field)."""
        values = self.query.get(name)
        if values:
            return values[0]
        if isinstance(self.body, dict) and isinstance(self.body.get(name), str):
            return str(self.body[name])
        return default


@dataclass
class FakeAnswer:
    """What the fake sends back: a status, a body and headers.

    A ``bytes`` body is sent as it is, with ``content_type``; any other body but None is
    sent as JSON (None: no body). ``drop``: hang up without answering at all.
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=utf-8"
    drop: bool = False


class CrmRefusal(Exception):
    """Raise from ``route`` to answer with an error status and body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.answer = FakeAnswer(status, body, headers or {})


@dataclass
class Fault:
    """An injected failure for the next ``times`` requests whose ``METHOD /path?query``
    contains ``match`` (and whose method is ``method``, when given)."""

    match: str
    times: int
    answer: FakeAnswer | None = None
    #: Carry the request out, then hang up without answering.
    drop: bool = False
    #: Carry the request out, then answer with ``answer`` (the real answer is lost).
    after: bool = False
    method: str = ""


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and can ``reply`` (deprecated: override ``route``)."""

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request line ``http.server`` writes to stderr."""

    def reply(self, status: int, body: bytes = b"ok", content_type: str = "text/plain") -> None:
        """Answer with ``status`` and ``body`` (Content-Length set)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FakeHttpService(Startable):
    """Base of a fake HTTP service; subclasses implement ``route``. Thread-safe.

    ``route`` runs on the server's threads without ``lock`` held: a subclass whose state
    several requests change takes ``self.lock`` where it needs it.
    """

    #: Headers sent with every answer (an answer's own headers win).
    headers: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        listen: bool = True,
    ) -> None:
        """``listen=False``: the port (give one) is not bound until ``start``, so connections
        are refused until then, as with a service that is not up yet."""
        self.lock = threading.RLock()
        self.requests: list[FakeRequest] = []
        self.faults: list[Fault] = []
        self._ssl_context = ssl_context
        if handler is None:
            handler = type("Handler", (_RouteHandler,), {"fake": self})
        self.server = ThreadingHTTPServer((host, port), handler, bind_and_activate=listen)
        self.server.daemon_threads = True
        self._listening = listen
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True)
        self._thread: threading.Thread | None = None

    # -- what a subclass provides ---------------------------------------------------------
    def route(self, request: FakeRequest) -> FakeAnswer:
        """The service's answer to ``request`` (raise ``CrmRefusal`` for an error answer)."""
        raise CrmRefusal(404, {"error": f"no route for {request.line}"})

    def invalid_body(self, request: FakeRequest) -> FakeAnswer:
        """The answer to a body that says it is JSON and is not (the request is not logged)."""
        return FakeAnswer(400, {"error": "the body is not valid JSON"})

    def fault_body(self) -> Any:
        """The body of an injected failure given none (the service's generic error)."""
        return None

    # -- faults ---------------------------------------------------------------------------
    def fail_next(
        self,
        match: str,
        status: int,
        body: Any = None,
        times: int = 1,
        *,
        headers: dict[str, str] | None = None,
        method: str = "",
        after: bool = False,
    ) -> None:
        """The next ``times`` requests whose ``METHOD /path?query`` contains ``match`` fail so
        (``after``: only once the request was carried out)."""
        answer = FakeAnswer(status, self.fault_body() if body is None else body, headers or {})
        with self.lock:
            self.faults.append(Fault(match, times, answer, after=after, method=method))

    def drop_next(self, match: str, times: int = 1) -> None:
        """Carry out the next matching requests, then hang up without answering."""
        with self.lock:
            self.faults.append(Fault(match, times, drop=True))

    def clear_faults(self) -> None:
        """No more injected failures."""
        with self.lock:
            self.faults.clear()

    def take_fault(self, request: FakeRequest) -> Fault | None:
        """The fault ``request`` meets, if any (counted down)."""
        with self.lock:
            for fault in self.faults:
                if fault.match in request.target and fault.method in ("", request.method):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # -- the log --------------------------------------------------------------------------
    def requests_to(self, method: str, path: str) -> list[FakeRequest]:
        """The requests received for ``METHOD path``, oldest first."""
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def count(self, method: str, path: str) -> int:
        """How many requests ``METHOD path`` received."""
        return len(self.requests_to(method, path))

    # -- server ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port served."""
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """``http(s)://host:port`` (no trailing slash)."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self.server.server_address[0]!s}:{self.port}"

    def start(self) -> Self:
        """Serve from a daemon thread; returns self."""
        if not self._listening:
            self.server.server_bind()
            self.server.server_activate()
            self._listening = True
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-http-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (the port is free again)."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.server.server_close()


#: The earlier name of ``FakeHttpService`` (deprecated; see docs/testing-plugins.md).
FakeCrm = FakeHttpService


def _parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "application/x-www-form-urlencoded" in content_type:
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}
    if "xml" in content_type or content_type.startswith("text/"):
        return raw.decode(errors="replace")
    return json.loads(raw)


class _RouteHandler(BaseHTTPRequestHandler):
    fake: FakeHttpService
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _request(self) -> tuple[FakeRequest, bool]:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        query = parse_qs(parts.query, keep_blank_values=True)
        request = FakeRequest(self.command, parts.path, query, None, headers, raw, parts.query)
        try:
            request.body = _parse_body(raw, headers.get("content-type", ""))
        except ValueError:
            return request, False
        return request, True

    def _handle(self) -> None:
        fake = self.fake
        request, valid = self._request()
        if not valid:
            self._send(fake.invalid_body(request))
            return
        with fake.lock:
            fake.requests.append(request)
        fault = fake.take_fault(request)
        if fault is not None and fault.answer is not None and not fault.after:
            self._send(fault.answer)
            return
        try:
            answer = fake.route(request)
        except CrmRefusal as exc:
            answer = exc.answer
        if fault is not None and fault.answer is not None:
            answer = fault.answer
        if answer.drop or (fault is not None and fault.drop):
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(answer)

    def _send(self, answer: FakeAnswer) -> None:
        body = answer.body
        data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body)
        data = data.encode() if isinstance(data, str) else data
        self.send_response(answer.status)
        headers = {**self.fake.headers, **answer.headers}
        if data:
            headers = {"Content-Type": answer.content_type, **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815
