"""A real local SOAP endpoint for the client tests: a threaded ``http.server`` on a free port.

(A uniquely named module rather than conftest, so tests can import the helpers.)

Each request takes the next scripted ``Reply`` (or the default one) and is recorded, so the
tests can count exactly how many requests the "PBX" saw.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from callbridge.settings import PbxSettings

PASSWORD = "s3cret-pw"
PASSWORD_MD5 = "a6f7b4e1b2f1d5f4e1f0c5e3a1b2c3d4"


@dataclass
class Reply:
    """What the server does with one request."""

    status: int = 200
    body: bytes = b""
    #: Hold the answer until the server is released (makes the client's read time out).
    hang: bool = False
    #: Close the connection without answering.
    drop: bool = False
    content_type: str = "text/xml; charset=utf-8"


@dataclass
class Seen:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    body: bytes


def response(command: str, **values: str) -> bytes:
    """A plausible success envelope, as the simulator answers."""
    children = "".join(f"<{k}>{v}</{k}>" for k, v in values.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soap:Envelope xmlns:soap="http://www.w3.org/2001/12/soap-envelope" '
        'xmlns:vspbx="urn:vspbx"><soap:Body>'
        f"<vspbx:{command}Response>{children}</vspbx:{command}Response>"
        "</soap:Body></soap:Envelope>"
    ).encode()


def fault11(code: str, text: str) -> bytes:
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f"<soap:Fault><faultcode>{code}</faultcode><faultstring>{text}</faultstring>"
        "</soap:Fault></soap:Body></soap:Envelope>"
    ).encode()


@dataclass
class SoapServer:
    """The running server: its URL, the script of replies, the requests it saw."""

    port: int
    script: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=lambda: Reply(body=response("Any", result="ok")))
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/soap"

    def settings(self, **overrides: object) -> PbxSettings:
        values: dict[str, object] = {
            "soap_url": self.url,
            "user": "auth-integration@acme",
            "password": PASSWORD,
            "connect_timeout": 2.0,
            "read_timeout": 10.0,
            "retry_attempts": 3,
            "retry_max_seconds": 30.0,
        }
        values.update(overrides)
        return PbxSettings.model_validate(values)

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.seen)

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with server.lock:
                    server.seen.append(Seen(self.path, dict(self.headers.items()), body))
                    reply = server.script.pop(0) if server.script else server.default
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.hang:
                    server.release.wait(30)
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(reply.body)

        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        if self.port == 0:
            self.port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
