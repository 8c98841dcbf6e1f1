"""A recording plugin and helpers for the companies tests.

``RecorderPlugin`` is an ordinary third-party-style plugin (a class with a settings class
and hooks): nothing in it knows about companies, which is the point: the core makes one
instance per company that lists it, each configured from its company's table.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
from pydantic_settings import SettingsConfigDict

from callbridge import ActivityRef, Contact, PluginSettings, hookimpl
from callbridge.context import Context
from callbridge.errors import PermanentError
from callbridge.models import Call, CallRecord, ScreenPop
from callbridge.testing import BuiltEvent, EventFactory, LiveService, wait_until

#: (label, hook, call key or event code, company seen on the call) of every hook call.
SEEN: list[tuple[str, str, str, str]] = []
_SEEN_LOCK = threading.Lock()
#: Set to let stalled lookups (a CRM outage) return.
RELEASE = threading.Event()


class RecorderSettings(PluginSettings):
    """A label to tell the instances apart, and how to misbehave."""

    model_config = SettingsConfigDict(env_prefix="CALLBRIDGE_RECORDER_")

    label: str
    #: Lookups hang until ``RELEASE`` is set (a CRM that stopped answering).
    stall: bool = False
    #: ``log_call`` refuses for good (the delivery goes dead).
    fail_log: bool = False


class RecorderPlugin:
    """Records every hook call; finds every number as a contact named after its label."""

    name = "recorder"
    settings_class = RecorderSettings

    def __init__(self) -> None:
        self.label = "?"
        self.stall = False
        self.fail_log = False
        self.lookups = 0

    def configure(self, settings: RecorderSettings) -> None:
        self.label, self.stall, self.fail_log = settings.label, settings.stall, settings.fail_log

    def _note(self, hook: str, what: str, company: str) -> None:
        with _SEEN_LOCK:
            SEEN.append((self.label, hook, what, company))

    @hookimpl
    def lookup_contact(self, number: str, call: Call) -> Contact | None:
        self.lookups += 1
        self._note("lookup_contact", call.key, call.company)
        if self.stall:
            RELEASE.wait(120)
        return Contact(record_id=f"{self.label}-1", name=f"{self.label} contact")

    @hookimpl
    def screen_pop(self, pop: ScreenPop) -> None:
        self._note("screen_pop", pop.call.key, pop.call.company)

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef:
        self._note("log_call", record.call.key, record.call.company)
        if self.fail_log:
            raise PermanentError(f"{self.label} refuses")
        return ActivityRef(record_type="Task", record_id=f"{self.label}-{record.call.key}")

    @hookimpl
    def startup(self, context: Context) -> None:
        self._note("startup", str(context.settings.data_dir), context.company)

    @hookimpl
    def pbx_event(self, event: Any) -> None:
        self._note("pbx_event", str(event.ssn_event), event.company or "")


def seen(label: str, hook: str | None = None) -> list[tuple[str, str, str, str]]:
    """What the instance labelled ``label`` saw (of ``hook``)."""
    with _SEEN_LOCK:
        return [s for s in SEEN if s[0] == label and (hook is None or s[1] == hook)]


def reset() -> None:
    """Forget what was seen; stalled lookups stall again."""
    with _SEEN_LOCK:
        SEEN.clear()
    RELEASE.clear()


def send(service: LiveService, event: BuiltEvent, token: str, **extra: str) -> httpx.Response:
    """GET ``/pbx/events`` as the PBX does, with ``token``."""
    params = {**event.params, "token": token, **extra}
    return httpx.get(f"{service.url}/pbx/events", params=params, timeout=30.0, trust_env=False)


def one_call(service: LiveService, events: EventFactory, token: str, *, ended: bool = True) -> str:
    """A ring (answered and hung up when ``ended``) sent with ``token``; its call id."""
    ring = events.incoming()
    call_id = ring.event.call_id  # type: ignore[union-attr]
    assert send(service, ring, token).status_code == 200
    if ended:
        assert send(service, events.answered(call_id), token).status_code == 200
        assert send(service, events.remote_hangup(call_id), token).status_code == 200
    return str(call_id)


class ServeProcess:
    """``callbridge serve`` as a real process (engine child included), for SIGHUP tests."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = data_dir / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServeProcess:
        """Start with this process's ``CALLBRIDGE_*`` environment; wait until ready."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = [str(Path(sys.executable).with_name("callbridge")), "serve"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.data_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._ready, f"callbridge serve on {self.url} ({self.log})", 60)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"serve exited {self.process.returncode}: {self.output()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    def hup(self) -> None:
        """``kill -HUP``: reload the companies file."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Ctrl-C and wait (kill after 30 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def get(self, params: dict[str, str]) -> int:
        """The status of ``GET /pbx/events`` with ``params``."""
        url = f"{self.url}/pbx/events"
        return httpx.get(url, params=params, timeout=30, trust_env=False).status_code
