"""Builders for the connector's tests: calls and call records as the core would hand them."""

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

T0 = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


def make_call(
    *,
    direction: Direction = Direction.INBOUND,
    number: str = "+390612345678",
    extension: str | None = "201",
    key: str = "1:000012A0",
    outcome: Outcome = Outcome.ANSWERED,
    state: CallState = CallState.ENDED,
    crm: CrmContext | None = None,
    group: str | None = None,
) -> Call:
    originate = None
    if crm is not None:
        originate = Originate(
            external_id="cb-ext-1",
            user="auth-Mario@example",
            extension=extension,
            number=number,
            crm=crm,
            created_at=T0 - timedelta(seconds=5),
            state="ended",
        )
    answered = outcome is Outcome.ANSWERED
    return Call(
        key=key,
        company_id="1",
        user_call_id=key.split(":")[-1],
        direction=direction,
        state=state,
        user_id="0000000B",
        extension=extension,
        remote_number=number,
        remote_e164=number if number.startswith("+") else None,
        group=group,
        external_id=originate.external_id if originate else None,
        originate=originate,
        ring_at=T0,
        answer_at=T0 + timedelta(seconds=7) if answered else None,
        end_at=T0 + timedelta(seconds=70),
        outcome=outcome,
        hung_up_by=HungUpBy.REMOTE,
    )


def make_record(call: Call, contact: Contact | None = None, **extra: Any) -> CallRecord:
    answered = call.outcome is Outcome.ANSWERED
    return CallRecord(
        call=call,
        contacts={"salesforce": contact} if contact is not None else {},
        duration_s=63 if answered else 0,
        ring_s=7 if answered else 70,
        **extra,
    )
