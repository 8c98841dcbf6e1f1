"""The engine as a process of its own (``callbridge engine``), and its two doorbells.

``callbridge serve`` runs the engine in a child process so that CRM work never competes with
the PBX's acknowledgements for the interpreter lock: the HTTP process only appends events and
reads the journal. The child lowers its own CPU priority (``server.engine_nice``) and writes
the journal's state file, the HTTP process its events file, so neither waits for the other's
write lock. Two pipes replace the in-process calls, and carry no data that matters:

- **wake** (server -> engine): ``e`` after new events, so the dispatcher need not wait for
  its next poll; ``m`` when a sys_exec MySQL trigger announced an outbox row. End of file
  means the server is gone (even after kill -9): the engine stops cleanly and exits.
- **bell** (engine -> server): one line ``<extension> <id>`` per agent event, so the SSE
  streams read the journal at once. The journal stays the only source of the messages.

A third channel, a socket pair, carries ``serve``'s questions (see ``CONTROL_*``): ``p`` (is
the dispatcher healthy?) once a second, so that a stopped or wedged engine is noticed, and
``m`` (your metrics, please) at each scrape of ``/metrics``, so the engine's counters are
served with the HTTP process's.

Without pipes (``callbridge engine`` run by hand beside ``callbridge serve --engine none``)
the dispatcher polls the journal and the streams fall back to their heartbeat polling.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from prometheus_client import generate_latest

from .. import metrics
from ..companies.reload import reload_on_sighup
from ..journal.base import AgentEvent
from ..memory import freeze_startup_objects
from .engine import Engine

log = logging.getLogger("callbridge.engine.worker")

#: A question on the control socket: one op byte and a request id.
CONTROL_REQUEST = struct.Struct(">cI")
#: An answer: the request id and the body's length, then the body.
CONTROL_REPLY = struct.Struct(">II")


def _post_bell(fd: int, event: AgentEvent) -> None:
    """Write one bell line; a full pipe already holds a pending wake-up, so drop it."""
    with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
        os.write(fd, f"{event.extension} {event.id}\n".encode())


def run_worker(
    engine: Engine,
    *,
    start_sources: Callable[[], None],
    nudges: Sequence[Callable[[], None]],
    close: Callable[[], None],
    wake_fd: int | None,
    bell_fd: int | None,
    control_fd: int | None = None,
) -> None:
    """Run ``engine`` (assembled by ``callbridge.assembly``) until told to stop, then ``close``.

    ``start_sources`` starts the MySQL source when one is configured; ``nudges`` wake it (a
    sys_exec trigger's ``m`` on the wake pipe); ``close`` stops and closes everything.
    """
    stop = threading.Event()
    if bell_fd is not None:
        os.set_blocking(bell_fd, False)
        engine.bus.subscribe(None, lambda event: _post_bell(bell_fd, event))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    reload_on_sighup(engine.reload, "engine")  # serve passes its SIGHUP on
    if control_fd is not None:
        # Before the start: a long one (many open calls to restore) answers "not running",
        # rather than nothing, which would read as a stopped or wedged engine.
        control = socket.socket(fileno=control_fd)
        threading.Thread(
            target=_answer, args=(control, engine), name="engine-control", daemon=True
        ).start()
    engine.start()
    start_sources()
    if wake_fd is not None:
        threading.Thread(
            target=_listen, args=(wake_fd, engine, nudges, stop), name="engine-wake", daemon=True
        ).start()
    freeze_startup_objects()
    log.info("engine running in process %d", os.getpid())
    try:
        stop.wait()
    finally:
        close()
        log.info("engine stopped")


def _listen(
    fd: int, engine: Engine, nudges: Sequence[Callable[[], None]], stop: threading.Event
) -> None:
    """Turn wake-up bytes into calls; end of file means the server process is gone."""
    while not stop.is_set():
        try:
            data = os.read(fd, 4096)
        except InterruptedError:
            continue
        except OSError:
            data = b""
        if not data:
            log.info("the server process is gone; stopping the engine")
            stop.set()
            return
        if b"e" in data:
            engine.wake()
        if b"m" in data:
            for nudge in nudges:
                nudge()


def health(engine: Engine) -> dict[str, object]:
    """What ``serve`` reads once a second: ``problem`` is None while all is well."""
    return {"problem": engine.problem}


def _answer(sock: socket.socket, engine: Engine) -> None:
    """Answer ``serve``'s questions in order until it closes the socket."""
    with sock:
        while True:
            try:
                request = _read_exactly(sock, CONTROL_REQUEST.size)
            except OSError:
                return
            if request is None:
                return
            op, request_id = CONTROL_REQUEST.unpack(request)
            if op == b"m":
                body = generate_latest(metrics.REGISTRY)
            else:
                try:
                    body = json.dumps(health(engine)).encode()
                except Exception as exc:  # a health check must answer, whatever broke
                    body = json.dumps({"problem": f"health check failed: {exc}"}).encode()
            try:
                sock.sendall(CONTROL_REPLY.pack(request_id, len(body)) + body)
            except OSError:
                return


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    """``size`` bytes, or None at end of file."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data
