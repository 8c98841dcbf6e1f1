"""A local chat service with an incoming webhook, speaking over real HTTP.

Like Slack's, the token is in the URL path: requests to any other path get 404
("no_service"). It keeps every message with its Idempotency-Key header and can be told to
answer with an error status.
"""

from __future__ import annotations

from typing import Any

from callbridge.testing import FakeAnswer, FakeHttpService, FakeRequest

SECRET_PATH = "/services/T0001/B0001/s3cr3tW3bh00kT0k3n"


class FakeChat(FakeHttpService):
    """``start()``, ``webhook_url``, ``messages``, ``status`` (force an error answer).

    The server, its thread and its request log are the test kit's ``FakeHttpService``;
    this class is only the chat service's rules.
    """

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.status: int | None = None

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{SECRET_PATH}"

    def count(self, key: str) -> int:  # type: ignore[override]
        with self.lock:
            return sum(1 for k, _ in self.messages if k == key)

    def route(self, request: FakeRequest) -> FakeAnswer:
        if request.method != "POST" or request.path != SECRET_PATH:
            return _text(404, "no_service")
        if self.status is not None:
            return _text(self.status, "invalid_payload" if self.status < 500 else "down")
        payload = request.body
        if (
            not isinstance(payload, dict)
            or not payload.get("text")
            or not isinstance(payload["text"], str)
        ):
            return _text(400, "no_text")
        with self.lock:
            self.messages.append((request.headers.get("idempotency-key", ""), payload))
        return _text(200, "ok")

    def invalid_body(self, request: FakeRequest) -> FakeAnswer:
        return _text(400, "invalid_payload")


def _text(status: int, text: str) -> FakeAnswer:
    return FakeAnswer(status, text.encode(), content_type="text/plain")
