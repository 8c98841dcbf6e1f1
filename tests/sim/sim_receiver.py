"""A real local HTTP server that records the events it receives (callbridge ingress stand-in)."""

from __future__ import annotations

from callbridge.testing import FakeAnswer, FakeHttpService, FakeRequest


class Receiver(FakeHttpService):
    """Records every GET's query, like callbridge's ingress, on the kit's fake-service base."""

    def __init__(self) -> None:
        super().__init__()
        #: Statuses to answer with, in order; 200 once they run out.
        self.statuses: list[int] = []
        self.start()

    @property
    def queries(self) -> list[dict[str, str]]:
        """Each GET's query parameters (the last value of a repeated one), oldest first."""
        with self.lock:
            return [
                {k: v[-1] for k, v in r.query.items()} for r in self.requests if r.method == "GET"
            ]

    @property
    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests if r.method == "GET"]

    @property
    def events_url(self) -> str:
        return f"{self.url}/pbx/events"

    def route(self, request: FakeRequest) -> FakeAnswer:
        if request.method != "GET":
            return FakeAnswer(501)
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 200
        return FakeAnswer(status, b"ok", content_type="text/plain")
