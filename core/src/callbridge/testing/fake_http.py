"""``FakeHttpService``: a fake HTTP service (a CRM, a webhook, a PBX endpoint) on a real port.

Tests that check what callbridge sends need something real to send it to: a socket, real
HTTP, real status codes. Each fake only says how it answers (a ``BaseHTTPRequestHandler``
subclass, ``QuietHandler`` for the common parts); this class binds a free loopback port,
serves from a daemon thread and stops cleanly, so no test carries its own copy of that.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

__all__ = ["FakeHttpService", "QuietHandler"]


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (test output stays readable) and can ``reply``."""

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request line ``http.server`` writes to stderr."""

    def reply(self, status: int, body: bytes = b"ok", content_type: str = "text/plain") -> None:
        """Answer with ``status`` and ``body`` (Content-Length set)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FakeHttpService:
    """Serve ``handler`` on ``host:port`` (``0``: a free port) from a daemon thread.

    Bound at construction, so ``url`` and ``port`` are known before ``start``; ``stop`` (or
    leaving the ``with`` block) shuts the server down and releases the port.
    """

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port served."""
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port`` of the service (no trailing slash)."""
        return f"http://{self.server.server_address[0]!s}:{self.port}"

    def start(self) -> Self:
        """Serve from a daemon thread; returns self."""
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
        """Stop serving and close the socket."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
