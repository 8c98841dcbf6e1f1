"""The HTTP process's handle on an engine running in a child process.

It looks like an in-process ``Engine`` to the rest of the service (``start``, ``stop``,
``running``, ``notify``, ``bus``), so the ingress, the API and the streams do not care where
the engine runs. See ``callbridge.engine.worker`` for why it runs apart and what the two
pipes carry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime

from ..engine.bus import AgentBus
from ..journal.base import AgentEvent

log = logging.getLogger("callbridge.server")


class EngineLink:
    """Starts ``callbridge engine`` as a child and relays the doorbells."""

    def __init__(self, *, env: dict[str, str] | None = None, stop_timeout: float = 15.0) -> None:
        self.bus = AgentBus()
        self._env = env
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._wake_w: int | None = None
        self._bell_r: int | None = None

    def __repr__(self) -> str:
        pid = self._process.pid if self._process else None
        return f"EngineLink(pid={pid}, running={self.running})"

    @property
    def running(self) -> bool:
        """Whether the child is alive (for ``/readyz``)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Spawn the engine with the wake pipe's read end and the bell pipe's write end."""
        if self.running:
            return
        wake_r, wake_w = os.pipe()
        bell_r, bell_w = os.pipe()
        command = [
            sys.executable,
            "-m",
            "callbridge.cli",
            "engine",
            "--wake-fd",
            str(wake_r),
            "--bell-fd",
            str(bell_w),
        ]
        try:
            # Our own interpreter and module, no shell, no outside input in the command.
            self._process = subprocess.Popen(  # noqa: S603
                command, pass_fds=(wake_r, bell_w), env=self._env
            )
        finally:
            os.close(wake_r)
            os.close(bell_w)
        os.set_blocking(wake_w, False)
        self._wake_w, self._bell_r = wake_w, bell_r
        threading.Thread(target=self._relay, name="engine-bell", daemon=True).start()
        log.info("engine started in process %d", self._process.pid)

    def stop(self) -> None:
        """Close the wake pipe (the engine stops at end of file), then wait for it."""
        process = self._process
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                os.close(self._wake_w)
            self._wake_w = None
        if process is None:
            return
        try:
            process.wait(self._stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("engine did not stop within %.0fs; terminating it", self._stop_timeout)
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def notify(self) -> None:
        """New events are in the journal: wake the dispatcher."""
        self._ring(b"e")

    def nudge(self) -> None:
        """A sys_exec trigger announced an outbox row: wake the MySQL source."""
        self._ring(b"m")

    def _ring(self, byte: bytes) -> None:
        fd = self._wake_w
        if fd is None:
            return
        # A full pipe already holds a pending wake-up; a closed one means we are stopping.
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
            os.write(fd, byte)

    def _relay(self) -> None:
        """Publish each bell line on the local bus, where the SSE streams listen."""
        fd = self._bell_r
        assert fd is not None
        pending = b""
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while True:
                chunk = pipe.read(4096)
                if not chunk:
                    return  # the engine exited
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    extension, _, raw_id = line.decode(errors="replace").rpartition(" ")
                    if extension and raw_id.isdigit():
                        self.bus.publish(
                            AgentEvent(
                                id=int(raw_id),
                                extension=extension,
                                at=datetime.now(UTC),
                                kind="bell",
                                data={},
                            )
                        )
