"""A recording plugin and helpers for the companies tests.

``RecorderPlugin`` is an ordinary third-party-style plugin (a class with a settings class
and hooks): nothing in it knows about companies, which is the point: the core makes one
instance per company that lists it, each configured from its company's table.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
from pydantic_settings import SettingsConfigDict

from callbridge import ActivityRef, Contact, PluginSettings, hookimpl
from callbridge.errors import PermanentError
from callbridge.models import Call, CallRecord, ScreenPop
from callbridge.testing import BuiltEvent, EventFactory, LiveService

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
