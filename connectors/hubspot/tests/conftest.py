"""Fixtures of the HubSpot connector's tests: the fake HubSpot, a configured plugin, calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hs_fake import TOKEN, FakeHubSpot

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
)
from callbridge_hubspot.plugin import HubSpotPlugin
from callbridge_hubspot.settings import HubSpotSettings

T0 = datetime(2025, 3, 4, 9, 30, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    server = FakeHubSpot().start()
    yield server
    server.stop()


@pytest.fixture
def make_plugin(
    fake: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., HubSpotPlugin]:
    """A new, configured plugin instance on the same data dir (a "restart" each call)."""
    for name in list(__import__("os").environ):
        if name.startswith("CALLBRIDGE_"):
            monkeypatch.delenv(name)

    def build(**overrides: Any) -> HubSpotPlugin:
        values: dict[str, Any] = {
            "access_token": TOKEN,
            "api_host": fake.url,
            "data_dir": tmp_path / "data",
            "search_rate": 50.0,
            "default_region": "IT",
            "timeout": 5.0,
        }
        values.update(overrides)
        plugin = HubSpotPlugin()
        plugin.configure(HubSpotSettings(**values))
        return plugin

    return build


def make_call(
    direction: Direction = Direction.INBOUND,
    outcome: Outcome = Outcome.ANSWERED,
    *,
    ucid: str = "000012A0",
    remote: str = "+390612345678",
    extension: str = "201",
    crm: CrmContext | None = None,
    hung_up_by: HungUpBy = HungUpBy.REMOTE,
    group: str | None = None,
) -> Call:
    answered = outcome is Outcome.ANSWERED
    originate = None
    if crm is not None:
        originate = Originate(
            external_id="ext-1", user="auth-anna@pbx.local", extension=extension,
            number=remote, crm=crm, created_at=T0,
        )  # fmt: skip
    return Call(
        key=f"1:{ucid}",
        company_id="1",
        user_call_id=ucid,
        direction=direction,
        state=CallState.ENDED,
        user_id="u1",
        extension=extension,
        remote_number=remote,
        remote_e164=remote if remote.startswith("+") else None,
        group=group,
        originate=originate,
        external_id=originate.external_id if originate else None,
        ring_at=T0,
        answer_at=T0 + timedelta(seconds=5) if answered else None,
        end_at=T0 + timedelta(seconds=65),
        outcome=outcome,
        hung_up_by=hung_up_by,
    )


def make_record(call: Call, contact: Contact | None = None, **extra: Any) -> CallRecord:
    answered = call.outcome is Outcome.ANSWERED
    return CallRecord(
        call=call,
        contacts={"hubspot": contact} if contact else {},
        duration_s=60 if answered else 0,
        ring_s=5,
        **extra,
    )
