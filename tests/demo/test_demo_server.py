"""``ServerThread``: real HTTP on a free port, stopped and served again on the same port."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from callbridge.demo import ServerThread, bind_socket


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    return app


def test_serves_stops_and_serves_again_on_the_same_port() -> None:
    server = ServerThread(_app()).start()
    try:
        port = server.port
        assert port > 0
        assert httpx.get(f"{server.url}/ping", timeout=10).json() == {"pong": "yes"}
        server.stop()
        assert not server.running
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/ping", timeout=10)
        server.start()
        assert server.port == port
        assert httpx.get(f"{server.url}/ping", timeout=10).status_code == 200
    finally:
        server.stop()


def test_a_port_in_use_is_a_clear_error() -> None:
    taken = bind_socket()
    taken.listen()
    try:
        with pytest.raises(OSError):
            ServerThread(_app(), port=taken.getsockname()[1]).start()
    finally:
        taken.close()
