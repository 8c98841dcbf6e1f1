"""``FakeCrm``: the plumbing of a local fake CRM server, for connector tests.

A connector's tests describe the CRM's wire format (its routes, validation and error bodies)
in a subclass's ``route``; this base runs it on ``http(s)://127.0.0.1:<free port>`` in a
thread and adds what every such fake needs: a log of the requests it was sent, and faults to
inject (fail the next matching requests with a status, a body and headers; or carry a
request out and then hang up without answering, the "did it happen?" case)::

    class FakeAcme(FakeCrm):
        def route(self, request: FakeRequest) -> FakeAnswer:
            if request.line == "GET /v1/people":
                return FakeAnswer(200, {"data": [...]})
            raise CrmRefusal(404, {"error": "not found"})

    with FakeAcme(ssl_context=context) as acme:   # or .start() / .stop()
        acme.fail_next("POST /v1/calls", 429, {"error": "slow down"}, headers={"Retry-After": "2"})

Pass an ``ssl.SSLContext`` (a ``trustme`` certificate for 127.0.0.1, say) to serve HTTPS.
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
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeRequest:
    """One request as the fake received it (kept in ``FakeCrm.requests``)."""

    method: str
    path: str
    query: dict[str, list[str]]
    #: The body: parsed JSON, a dict of form fields, or None.
    body: Any
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)

    @property
    def line(self) -> str:
        """``METHOD /path``: what faults match against."""
        return f"{self.method} {self.path}"

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
    """What the fake sends back: a status, a JSON body (None: no body) and headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class CrmRefusal(Exception):
    """Raise from ``route`` to answer with an error status and body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.answer = FakeAnswer(status, body, headers or {})


@dataclass
class Fault:
    """An injected failure for the next ``times`` requests whose line contains ``match``."""

    match: str
    times: int
    answer: FakeAnswer | None = None
    drop: bool = False


class FakeCrm:
    """Base of a fake CRM server; subclasses implement ``route``. Thread-safe."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.lock = threading.RLock()
        self.requests: list[FakeRequest] = []
        self.faults: list[Fault] = []
        self._ssl_context = ssl_context
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- what a subclass provides ---------------------------------------------------------
    def route(self, request: FakeRequest) -> FakeAnswer:
        """The CRM's answer to ``request`` (raise ``CrmRefusal`` for an error answer)."""
        raise CrmRefusal(404, {"error": f"no route for {request.line}"})

    # -- faults ---------------------------------------------------------------------------
    def fail_next(
        self,
        match: str,
        status: int,
        body: Any = None,
        times: int = 1,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next ``times`` requests whose ``METHOD /path`` contains ``match`` fail so."""
        with self.lock:
            self.faults.append(Fault(match, times, FakeAnswer(status, body, headers or {})))

    def drop_next(self, match: str, times: int = 1) -> None:
        """Carry out the next matching requests, then hang up without answering."""
        with self.lock:
            self.faults.append(Fault(match, times, drop=True))

    def clear_faults(self) -> None:
        """No more injected failures."""
        with self.lock:
            self.faults.clear()

    def _take_fault(self, line: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.match in line and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def requests_to(self, method: str, path: str) -> list[FakeRequest]:
        """The requests received for ``METHOD path``, oldest first."""
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    # -- server ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:<port>``."""
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{host!s}:{port}"

    def start(self) -> Self:
        """Listen on a free port of 127.0.0.1, in a daemon thread."""
        fake: FakeCrm = self

        class Handler(_Handler):
            state = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self._ssl_context is not None:
            server.socket = self._ssl_context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "application/x-www-form-urlencoded" in content_type:
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}
    return json.loads(raw)


class _Handler(BaseHTTPRequestHandler):
    state: FakeCrm
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = _parse_body(raw, self.headers.get("Content-Type") or "")
        except ValueError:
            self._send(FakeAnswer(400, {"error": "the body is not valid JSON"}))
            return
        request = FakeRequest(
            self.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            body,
            {k.lower(): v for k, v in self.headers.items()},
        )
        fake = self.state
        with fake.lock:
            fake.requests.append(request)
        fault = fake._take_fault(request.line)
        if fault is not None and fault.answer is not None:
            self._send(fault.answer)
            return
        try:
            answer = fake.route(request)
        except CrmRefusal as exc:
            answer = exc.answer
        if fault is not None and fault.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(answer)

    def _send(self, answer: FakeAnswer) -> None:
        data = b"" if answer.body is None else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        if data:
            self.send_header("Content-Type", "application/json;charset=utf-8")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815


__all__ = ["CrmRefusal", "FakeAnswer", "FakeCrm", "FakeRequest", "Fault"]
