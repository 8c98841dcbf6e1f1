"""Calls and call records for the HubSpot connector's tests (a uniquely named module:
``conftest`` cannot be imported from tests, several folders have one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from callbridge import (
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

T0 = datetime(2025, 3, 4, 9, 30, 0, tzinfo=UTC)


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
