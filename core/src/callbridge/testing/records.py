"""Ready-made ``Call`` and ``CallRecord`` objects, for calling a plugin's hooks directly.

Scenario tests play events through the real engine; these build the objects the engine would
hand to ``lookup_contact`` and ``log_call``, for fast unit tests of one hook.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..engine.records import build_record
from ..models import (
    Call,
    CallRecord,
    CallState,
    Contact,
    CrmContext,
    Direction,
    HungUpBy,
    LookupStatus,
    Originate,
    Outcome,
)
from .clock import DEFAULT_START
from .events import COMPANY_ID, EXTENSION, REMOTE, REMOTE_E164, USER_ID


def make_call(
    user_call_id: str = "000012A0",
    *,
    direction: Direction = Direction.INBOUND,
    outcome: Outcome | None = Outcome.ANSWERED,
    remote_e164: str | None = REMOTE_E164,
    remote_number: str = REMOTE,
    extension: str = EXTENSION,
    ring_at: datetime = DEFAULT_START,
    ring_s: int = 8,
    talk_s: int = 95,
    crm: CrmContext | None = None,
    external_id: str | None = None,
    **fields: Any,
) -> Call:
    """A call as the tracker reports it: ended with ``outcome`` (None: still ringing)."""
    answer_at = ring_at + timedelta(seconds=ring_s) if outcome is Outcome.ANSWERED else None
    if outcome is None:
        end_at = None
    elif answer_at is not None:
        end_at = answer_at + timedelta(seconds=talk_s)
    else:
        end_at = ring_at + timedelta(seconds=ring_s)
    originate = None
    if crm is not None or external_id is not None:
        originate = Originate(
            external_id=external_id or "CB0000000000000001",
            user=f"auth-{extension}@example",
            extension=extension,
            number=remote_e164 or remote_number,
            crm=crm,
            created_at=ring_at - timedelta(seconds=1),
            state="ended" if outcome is not None else "ringing",
            user_call_id=user_call_id,
        )
    values: dict[str, Any] = {
        "key": f"{COMPANY_ID}:{user_call_id}",
        "company_id": COMPANY_ID,
        "user_call_id": user_call_id,
        "direction": direction,
        "state": CallState.RINGING if outcome is None else CallState.ENDED,
        "user_id": USER_ID,
        "extension": extension,
        "remote_number": remote_number,
        "remote_e164": remote_e164,
        "external_id": originate.external_id if originate else None,
        "originate": originate,
        "ring_at": ring_at,
        "answer_at": answer_at,
        "end_at": end_at,
        "outcome": outcome,
        "hung_up_by": None if outcome is None else HungUpBy.REMOTE,
    }
    values.update(fields)
    return Call(**values)


def shifted_record(record: CallRecord, by: timedelta) -> CallRecord:
    """The same record ``by`` later: a reused PBX call id, the same call key, another call."""
    call = record.call
    moved = {
        name: value + by
        for name in ("ring_at", "answer_at", "end_at")
        if (value := getattr(call, name)) is not None
    }
    return record.model_copy(update={"call": call.model_copy(update=moved)})


def make_record(
    user_call_id: str = "000012A0",
    *,
    contacts: dict[str, Contact] | None = None,
    recording_url: str | None = None,
    lookups: dict[str, LookupStatus] | None = None,
    **call_fields: Any,
) -> CallRecord:
    """The CallRecord ``log_call`` receives for a finished call (see ``make_call``).

    Durations are computed as the engine computes them (``duration_ms`` exact, ``duration_s``
    rounded down); ``lookups`` says how each connector's lookup stands (default: none).
    """
    call = make_call(user_call_id, **call_fields)
    if call.outcome is None:
        raise ValueError("a CallRecord is for a finished call: give an outcome")
    record = build_record(call, contacts or {}, lookups)
    return record.model_copy(update={"recording_url": recording_url})
