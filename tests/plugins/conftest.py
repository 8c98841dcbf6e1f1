"""Fixtures for the plugin tests: a clean environment, core settings, calls and records."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callbridge.models import (
    Call,
    CallRecord,
    CallState,
    Contact,
    CrmContext,
    Direction,
    HungUpBy,
    Originate,
    Outcome,
    ScreenPop,
)
from callbridge.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No CALLBRIDGE_* variable and no .env from the developer's machine leaks in."""
    for name in list(os.environ):
        if name.upper().startswith(("CALLBRIDGE_", "CBTEST_")):
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def settings(tmp_path: Path) -> Callable[..., Settings]:
    """Core settings with the data directory in tmp."""

    def make(**overrides: Any) -> Settings:
        overrides.setdefault("data_dir", tmp_path / "data")
        return Settings(**overrides)

    return make


T0 = datetime(2025, 3, 14, 9, 30, 0, tzinfo=UTC)


@pytest.fixture
def make_call() -> Callable[..., Call]:
    def make(**fields: Any) -> Call:
        values: dict[str, Any] = {
            "key": "c1:0000AB12",
            "company_id": "c1",
            "user_call_id": "0000AB12",
            "direction": Direction.INBOUND,
            "state": CallState.ENDED,
            "extension": "201",
            "remote_number": "06 1234 5678",
            "remote_e164": "+390612345678",
            "ring_at": T0,
            "answer_at": T0 + timedelta(seconds=5),
            "end_at": T0 + timedelta(seconds=130),
            "outcome": Outcome.ANSWERED,
            "hung_up_by": HungUpBy.REMOTE,
        }
        values.update(fields)
        return Call(**values)

    return make


@pytest.fixture
def make_record(make_call: Callable[..., Call]) -> Callable[..., CallRecord]:
    def make(contacts: dict[str, Contact] | None = None, **call_fields: Any) -> CallRecord:
        call = make_call(**call_fields)
        return CallRecord(call=call, contacts=contacts or {}, duration_s=125, ring_s=5)

    return make


@pytest.fixture
def make_pop(make_call: Callable[..., Call]) -> Callable[..., ScreenPop]:
    def make(contacts: dict[str, Contact] | None = None, **call_fields: Any) -> ScreenPop:
        call_fields.setdefault("state", CallState.RINGING)
        call_fields.setdefault("answer_at", None)
        call_fields.setdefault("end_at", None)
        call_fields.setdefault("outcome", None)
        call_fields.setdefault("hung_up_by", None)
        return ScreenPop(call=make_call(**call_fields), contacts=contacts or {})

    return make


def originate_for(connector: str, record_id: str) -> Originate:
    """A click-to-call from a CRM record."""
    return Originate(
        external_id="cb-0001",
        user="auth-201@example",
        extension="201",
        number="+390612345678",
        crm=CrmContext(connector=connector, record_type="Contact", record_id=record_id),
        created_at=T0,
    )


@pytest.fixture
def make_originate() -> Callable[[str, str], Originate]:
    return originate_for
