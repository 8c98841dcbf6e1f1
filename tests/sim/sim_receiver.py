"""A real local HTTP server that records the events it receives (callbridge ingress stand-in)."""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl, urlsplit

from callbridge.testing import FakeHttpService, QuietHandler


class Receiver:
    """A real local HTTP server that records every GET's query, like callbridge's ingress."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.paths: list[str] = []
        #: Statuses to answer with, in order; 200 once they run out.
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with receiver._lock:
                    receiver.paths.append(parts.path)
                    receiver.requests.append(dict(parse_qsl(parts.query, keep_blank_values=True)))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.reply(status)

        self.service = FakeHttpService(Handler).start()

    @property
    def url(self) -> str:
        return f"{self.service.url}/pbx/events"

    def close(self) -> None:
        self.service.stop()
