"""A real local HTTP server that records the events it receives (callbridge ingress stand-in)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


class Receiver:
    """A real local HTTP server that records every GET's query, like callbridge's ingress."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.paths: list[str] = []
        #: Statuses to answer with, in order; 200 once they run out.
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with receiver._lock:
                    receiver.paths.append(parts.path)
                    receiver.requests.append(dict(parse_qsl(parts.query, keep_blank_values=True)))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                body = b"ok"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/pbx/events"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
