"""callbridge's HTTP service on a background thread: uvicorn, a real socket, a clean stop.

The demo and the test kit's ``LiveService`` run the real service in-process (real HTTP on a
real port, so the simulator, browsers and ``httpx`` talk to it exactly as they would to
``callbridge serve``) while keeping the engine, the journal and the plugins within reach.
uvicorn skips its signal handlers outside the main thread, so Ctrl-C stays with the caller.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from ..lifecycle import Startable
from .http_protocol import LenientHttpProtocol


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready TCP socket; port 0 picks a free one (no race with another process)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class ServerThread(Startable):
    """Serve ``app`` on ``host:port`` from a daemon thread until ``stop``.

    ``port=0`` picks a free port; ``port`` tells which one after ``start``. Stopping and
    starting again with the same port gives the same URL (what a reconnect test needs).
    ``graceful`` bounds how long open streams (SSE) may keep a stop waiting.
    """

    def __init__(
        self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0, graceful: float = 1.0
    ) -> None:
        self.app = app
        self.host = host
        self._port = port
        self.graceful = graceful
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        """The port served (known once bound)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` of the service."""
        return f"http://{self.host}:{self._port}"

    def start(self, timeout: float = 30.0, sock: socket.socket | None = None) -> ServerThread:
        """Bind (or use ``sock``), serve, and wait until uvicorn accepts connections."""
        if self._server is not None:
            return self
        sock = sock or bind_socket(self.host, self._port)
        self._port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            http=LenientHttpProtocol,  # raw non-ASCII bytes in a PBX's URL: see http_protocol
            lifespan="on",
            timeout_graceful_shutdown=max(1, round(self.graceful)),
        )
        server = uvicorn.Server(config)
        self._server = server
        self._error = None

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported by start(), never lost in a thread
                self._error = exc
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"callbridge-http-{self._port}")
        self._thread.daemon = True
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server = None
                reason = self._error or "it did not start in time"
                raise RuntimeError(f"the HTTP service on port {self._port} failed: {reason}")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> bool:
        """Ask uvicorn to exit (lifespan shutdown runs) and wait for the thread.

        True once the thread has ended (or nothing was running); False if uvicorn still runs
        after a forced exit, so a caller that must not go on with a live server can tell.
        """
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return True
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
        return not thread.is_alive()

    @property
    def running(self) -> bool:
        """Serving right now."""
        return self._server is not None and self._server.started
