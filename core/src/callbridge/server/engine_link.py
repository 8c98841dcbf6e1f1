"""The HTTP process's handle on an engine running in a child process.

It looks like an in-process ``Engine`` to the rest of the service (``start``, ``stop``,
``running``, ``notify``, ``bus``), so the ingress, the API and the streams do not care where
the engine runs. See ``callbridge.engine.worker`` for why it runs apart and what the two
pipes and the control socket carry.

It also supervises the child, since ``serve`` stays alive when only its engine dies (so
systemd's ``Restart=on-failure`` never fires): an engine that exits is started again after
a wait that doubles from 1 s up to ``restart_max`` (back to 1 s once one ran for a minute),
with a log line and ``callbridge_engine_restarts_total`` each time. Once a second it asks the
engine whether it is healthy; no answer for ``heartbeat_timeout`` (a SIGSTOP, a wedged
process) or a reported problem (a stalled dispatcher, a journal that cannot be written)
becomes ``problem``, which ``/readyz`` reports. A stopped engine is reported, not killed: it
may be under a debugger, and its pending work is in the journal either way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

from .. import metrics
from ..companies.registry import Companies
from ..engine.bus import AgentBus
from ..engine.engine import STARTING
from ..engine.worker import CONTROL_REPLY, CONTROL_REQUEST
from ..faults import FaultLog
from ..journal.base import AgentEvent

log = logging.getLogger("callbridge.server")

#: Seconds between two health checks of the engine.
CHECK_INTERVAL = 1.0
#: Seconds an engine must run before its restart wait starts over from the first step.
_STABLE_AFTER = 60.0
_FIRST_RESTART_WAIT = 1.0


class EngineLink:
    """Starts ``callbridge engine`` as a child and relays the doorbells."""

    def __init__(
        self,
        *,
        env: dict[str, str] | None = None,
        stop_timeout: float = 15.0,
        heartbeat_timeout: float = 15.0,
        restart_max: float = 60.0,
    ) -> None:
        self.bus = AgentBus()
        self._env = env
        self._stop_timeout = stop_timeout
        self._heartbeat_timeout = heartbeat_timeout
        self._restart_max = restart_max
        self._process: subprocess.Popen[bytes] | None = None
        self._wake_w: int | None = None
        self._bell_r: int | None = None
        self._control: socket.socket | None = None
        self._control_lock = threading.Lock()
        self._control_buffer = b""
        self._request_id = 0
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._started_at = 0.0
        self._last_answer = 0.0
        #: Why the engine is not fit to work, for ``/readyz``; None while it is.
        self.problem: str | None = None
        self.faults = FaultLog(log)

    def __repr__(self) -> str:
        pid = self._process.pid if self._process else None
        return f"EngineLink(pid={pid}, running={self.running})"

    @property
    def running(self) -> bool:
        """Whether the child is alive (for ``/readyz``)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Spawn the engine and start supervising it."""
        if self.running:
            return
        self._stopping.clear()
        self._spawn()
        self._supervisor = threading.Thread(
            target=self._supervise, name="engine-supervisor", daemon=True
        )
        self._supervisor.start()

    def _spawn(self) -> None:
        """Start the child with the wake pipe's read end, the bell pipe's write end and the
        control socket's other end."""
        wake_r, wake_w = os.pipe()
        bell_r, bell_w = os.pipe()
        control, child_control = socket.socketpair()
        command = [
            sys.executable,
            "-m",
            "callbridge.cli",
            "engine",
            "--wake-fd",
            str(wake_r),
            "--bell-fd",
            str(bell_w),
            "--control-fd",
            str(child_control.fileno()),
        ]
        try:
            # Our own interpreter and module, no shell, no outside input in the command.
            self._process = subprocess.Popen(  # noqa: S603
                command, pass_fds=(wake_r, bell_w, child_control.fileno()), env=self._env
            )
        except BaseException:
            for fd in (wake_w, bell_r):
                os.close(fd)
            control.close()
            raise
        finally:
            os.close(wake_r)
            os.close(bell_w)
            child_control.close()
        os.set_blocking(wake_w, False)
        self._wake_w, self._bell_r = wake_w, bell_r
        with self._control_lock:
            self._control, self._control_buffer = control, b""
        self._started_at = self._last_answer = time.monotonic()
        threading.Thread(target=self._relay, name="engine-bell", daemon=True).start()
        log.info("engine started in process %d", self._process.pid)

    def stop(self) -> None:
        """Close the wake pipe (the engine stops at end of file), then wait for it."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(CHECK_INTERVAL * 5)
            self._supervisor = None
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
        self._close_control()

    def _close_control(self) -> None:
        with self._control_lock:
            if self._control is not None:
                self._control.close()
                self._control = None

    # -- supervision ----------------------------------------------------------------------
    def _supervise(self) -> None:
        """Restart the engine when it exits; ask it once a second whether it is healthy."""
        wait = _FIRST_RESTART_WAIT
        while not self._stopping.wait(CHECK_INTERVAL):
            process = self._process
            if process is None:
                continue
            code = process.poll()
            if code is None:
                self._check_health()
                continue
            if time.monotonic() - self._started_at >= _STABLE_AFTER:
                wait = _FIRST_RESTART_WAIT
            self._set_problem(f"the engine process {process.pid} exited with code {code}")
            metrics.ENGINE_RESTARTS.labels(str(code)).inc()
            log.error(
                "the engine process %d exited with code %s; starting it again in %.0fs",
                process.pid,
                code,
                wait,
            )
            if self._wake_w is not None:
                with contextlib.suppress(OSError):
                    os.close(self._wake_w)
                self._wake_w = None
            self._close_control()
            if self._stopping.wait(wait):
                return
            wait = min(wait * 2, self._restart_max)
            try:
                self._spawn()
            except Exception as exc:
                log.error("could not start the engine again: %s", exc)
                continue
            assert self._process is not None
            log.warning("engine started again in process %d", self._process.pid)

    def _check_health(self) -> None:
        answer = self._ask(b"p", timeout=CHECK_INTERVAL)
        now = time.monotonic()
        if answer is not None:
            self._last_answer = now
            try:
                problem = json.loads(answer).get("problem")
            except ValueError:
                problem = "the engine's health answer was unreadable"
            self._set_problem(problem)
        elif now - self._last_answer > self._heartbeat_timeout:
            pid = self._process.pid if self._process else "?"
            self._set_problem(
                f"the engine process {pid} has not answered for {now - self._last_answer:.0f}s "
                "(stopped or wedged: see its state in ps, its threads with py-spy dump)"
            )

    def _set_problem(self, problem: str | None) -> None:
        """Record the engine's state; log when a problem starts (once a minute) and ends."""
        self.problem = problem
        metrics.ENGINE_UP.set(0 if problem else 1)
        if problem is None:
            self.faults.clear("engine", "the engine is healthy again")
        elif problem != STARTING:  # a start is not a fault: /readyz says it meanwhile
            self.faults.report("engine", f"engine: {problem}")

    def _ask(self, op: bytes, timeout: float) -> bytes | None:
        """Send one question on the control socket; its answer, or None (no answer in time).

        Answers come in order; one that arrives after its question timed out is read and
        dropped before the next question's answer.
        """
        with self._control_lock:
            sock = self._control
            if sock is None:
                return None
            self._request_id = (self._request_id + 1) % (1 << 32)
            request_id = self._request_id
            deadline = time.monotonic() + timeout
            try:
                sock.settimeout(timeout)
                sock.sendall(CONTROL_REQUEST.pack(op, request_id))
                while True:
                    buffer = self._control_buffer
                    if len(buffer) >= CONTROL_REPLY.size:
                        got_id, size = CONTROL_REPLY.unpack_from(buffer)
                        end = CONTROL_REPLY.size + size
                        if len(buffer) >= end:
                            self._control_buffer = buffer[end:]
                            if got_id == request_id:
                                return buffer[CONTROL_REPLY.size : end]
                            continue  # a late answer to an earlier question
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    sock.settimeout(left)
                    chunk = sock.recv(1 << 16)
                    if not chunk:
                        return None
                    self._control_buffer += chunk
            except OSError:  # socket.timeout included
                return None

    def metrics_text(self, timeout: float = 2.0) -> bytes | None:
        """The engine's metrics in the exposition format, or None when it does not answer."""
        return self._ask(b"m", timeout)

    def reload(self, companies: Companies) -> None:
        """Tell the engine child to reload the companies file (it reads it itself)."""
        process = self._process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGHUP)

    def wake(self) -> None:
        """New events are in the journal: wake the dispatcher."""
        self._write_wake(b"e")

    def nudge(self) -> None:
        """A sys_exec trigger announced an outbox row: wake the MySQL source."""
        self._write_wake(b"m")

    def _write_wake(self, byte: bytes) -> None:
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
