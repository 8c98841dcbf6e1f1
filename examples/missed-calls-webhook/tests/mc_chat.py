"""A local chat service with an incoming webhook, speaking over real HTTP.

Like Slack's, the token is in the URL path: requests to any other path get 404
("no_service"). It keeps every message with its Idempotency-Key header and can be told to
answer with an error status.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_PATH = "/services/T0001/B0001/s3cr3tW3bh00kT0k3n"


class FakeChat:
    """``start()``, ``webhook_url``, ``messages``, ``status`` (force an error answer)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.status: int | None = None
        self.lock = threading.Lock()
        chat = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != SECRET_PATH:
                    self._answer(404, "no_service")
                    return
                if chat.status is not None:
                    self._answer(chat.status, "invalid_payload" if chat.status < 500 else "down")
                    return
                payload = json.loads(body)
                if not isinstance(payload.get("text"), str) or not payload["text"]:
                    self._answer(400, "no_text")
                    return
                with chat.lock:
                    chat.messages.append((self.headers.get("Idempotency-Key", ""), payload))
                self._answer(200, "ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def webhook_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{SECRET_PATH}"

    def count(self, key: str) -> int:
        with self.lock:
            return sum(1 for k, _ in self.messages if k == key)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
