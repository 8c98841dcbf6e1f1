"""Test plugins, event builders and an engine factory for the dispatcher tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from callbridge.engine.engine import Engine
from callbridge.errors import PermanentError, RetryLater
from callbridge.hookspecs import hookimpl
from callbridge.journal.sqlite import SqliteJournal
from callbridge.models import ActivityRef, Call, CallRecord, Contact, ScreenPop
from callbridge.plugins.manager import load_plugins
from callbridge.settings import DispatchSettings, Settings, TrackerSettings

REMOTE = "0612345678"
REMOTE_E164 = "+390612345678"


def incoming(
    call_id: str, *, ext: str = "201", number: str = REMOTE, **extra: str
) -> dict[str, str]:
    """ssn_event 16: ``number`` calls extension ``ext``."""
    return {
        "ssn_event": "16",
        "call_id": call_id,
        "number": number,
        "ext": ext,
        "company_id": "1",
        "sender_type": "0",
        **extra,
    }


def outgoing(
    call_id: str, *, ext: str = "201", number: str = REMOTE, **extra: str
) -> dict[str, str]:
    """ssn_event 17: extension ``ext`` calls ``number``."""
    return {
        "ssn_event": "17",
        "call_id": call_id,
        "number": number,
        "ext": ext,
        "company_id": "1",
        "sender_type": "0",
        **extra,
    }


def answered(
    call_id: str, *, ext: str = "201", number: str = REMOTE, **extra: str
) -> dict[str, str]:
    """ssn_event 18 on an incoming call: the user (callee, ``number``) answers."""
    return {
        "ssn_event": "18",
        "call_id": call_id,
        "number": ext,
        "ext": number,
        "company_id": "1",
        "sender_type": "0",
        **extra,
    }


def local_hangup(
    call_id: str, *, ext: str = "201", number: str = REMOTE, **extra: str
) -> dict[str, str]:
    """ssn_event 21: the user hangs up."""
    return {
        "ssn_event": "21",
        "call_id": call_id,
        "number": number,
        "ext": ext,
        "company_id": "1",
        "sender_type": "0",
        **extra,
    }


def remote_hangup(
    call_id: str, *, ext: str = "201", number: str = REMOTE, **extra: str
) -> dict[str, str]:
    """ssn_event 20: the remote party hangs up."""
    return {
        "ssn_event": "20",
        "call_id": call_id,
        "number": number,
        "ext": ext,
        "company_id": "1",
        "sender_type": "0",
        **extra,
    }


class Crm:
    """A CRM plugin: a dict of contacts by E.164, log_call results by idempotency key.

    ``failures`` is a list of exceptions raised by the next log_call attempts, in order;
    ``lookup_failures`` the same for lookups.
    """

    def __init__(
        self,
        name: str = "crm",
        contacts: dict[str, Contact] | None = None,
        *,
        failures: Sequence[BaseException] = (),
        lookup_gate: threading.Event | None = None,
        log_gate: threading.Event | None = None,
        lookup_failures: Sequence[BaseException] = (),
    ) -> None:
        self.name = name
        self.contacts = (
            contacts
            if contacts is not None
            else {REMOTE_E164: Contact(record_id="C1", name="Mario Rossi", company="ACME")}
        )
        self.failures = list(failures)
        self.lookup_failures = list(lookup_failures)
        self.lookup_gate = lookup_gate
        self.log_gate = log_gate
        self.lookups: list[str] = []
        self.logged: dict[str, CallRecord] = {}
        self.attempts = 0
        self.lock = threading.Lock()

    @hookimpl
    def lookup_contact(self, number: str, call: Call) -> Contact | None:
        with self.lock:
            self.lookups.append(number)
            if self.lookup_failures:
                raise self.lookup_failures.pop(0)
        if self.lookup_gate is not None:
            self.lookup_gate.wait(30)
        return self.contacts.get(number)

    @property
    def by_call(self) -> dict[str, CallRecord]:
        """``logged`` keyed ``callbridge:<call key>:<name>`` (no start time: easier to name)."""
        with self.lock:
            return {f"callbridge:{r.call.key}:{self.name}": r for r in list(self.logged.values())}

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef | None:
        if self.log_gate is not None:
            self.log_gate.wait(30)
        with self.lock:
            self.attempts += 1
            if self.failures:
                raise self.failures.pop(0)
            self.logged[record.idempotency_key(self.name)] = record
        return ActivityRef(record_type="Task", record_id=f"T-{record.call.user_call_id}")


class PopRecorder:
    """Records every screen_pop and pbx_event, in order."""

    name = "recorder"

    def __init__(self) -> None:
        self.pops: list[ScreenPop] = []
        self.events: list[int] = []
        self.lock = threading.Lock()

    @hookimpl
    def screen_pop(self, pop: ScreenPop) -> None:
        with self.lock:
            self.pops.append(pop)

    @hookimpl
    def pbx_event(self, event: Any) -> None:
        with self.lock:
            self.events.append(int(event.ssn_event))


class Broken:
    """A plugin whose fan-out hooks always raise: must never stop the others."""

    name = "broken"

    @hookimpl
    def screen_pop(self, pop: ScreenPop) -> None:
        raise RuntimeError("pop failed")

    @hookimpl
    def pbx_event(self, event: Any) -> None:
        raise RuntimeError("observer failed")


__all__ = ["PermanentError", "RetryLater"]


def make_settings(tmp_path: Path, **dispatch: Any) -> Settings:
    """Settings with a data dir in ``tmp_path`` and tiny backoffs for fast retries."""
    base: dict[str, Any] = {
        "workers": 4,
        "lookup_budget": 5.0,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "max_attempts": 5,
    }
    base.update(dispatch)
    return Settings(
        data_dir=tmp_path,
        dispatch=DispatchSettings(**base),
        tracker=TrackerSettings(group_window=0.0),
    )


def make_engine(
    tmp_path: Path, *plugins: object, clock: Callable[[], datetime] | None = None, **dispatch: Any
) -> Engine:
    """An engine over a real SQLite journal with only ``plugins`` loaded (no built-ins)."""
    settings = make_settings(tmp_path, **dispatch)
    loaded = load_plugins(settings, entry_points=False, builtins=False, extra=list(plugins))
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    extra: dict[str, Any] = {} if clock is None else {"clock": clock}
    return Engine(
        settings,
        journal=journal,
        plugins=loaded,
        tick_interval=0.05,
        poll_interval=0.01,
        **extra,
    )
