"""The kit's ``FakeHttpService``: a handler on a real port, stopped cleanly."""

from __future__ import annotations

import socket

import httpx
import pytest

from callbridge.testing import FakeHttpService, QuietHandler


class _Teapot(QuietHandler):
    def do_GET(self) -> None:
        self.reply(418, self.path.encode())


def test_it_serves_the_handler_on_its_url_and_releases_the_port() -> None:
    with FakeHttpService(_Teapot) as service:
        answer = httpx.get(f"{service.url}/brew?cup=1", timeout=10)
        assert (answer.status_code, answer.text) == (418, "/brew?cup=1")
        port = service.port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
