"""The Task a finished call becomes, field by field, following Salesforce's own rules.

Pure functions: no I/O here, so what lands in Salesforce can be read (and tested) in one place.

- WhoId is a Contact or a Lead; WhatId is anything else (Account, Opportunity, Case...).
- A Lead WhoId forbids a WhatId (Salesforce answers FIELD_INTEGRITY_EXCEPTION).
- A click-to-call lands on the record the agent clicked from (``call.crm_context``), never on
  whatever a number lookup found.
- An ambiguous lookup is not attached to a guess: the candidates go into the Description.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from callbridge.models import CallRecord, Contact, Direction

from .settings import SalesforceSettings

_CALL_TYPE = {
    Direction.INBOUND: "Inbound",
    Direction.OUTBOUND: "Outbound",
    Direction.INTERNAL: "Internal",
}

#: Id prefixes of the objects that go into WhoId.
_WHO_PREFIXES = {"003": "Contact", "00Q": "Lead"}

SUBJECT_MAX = 255
DESCRIPTION_MAX = 32_000


def target(
    record: CallRecord, connector: str, accounts: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """``(WhoId, WhatId)`` for the Task of ``record``."""
    context = record.call.crm_context
    if context is not None and context.connector == connector:
        kind = context.record_type or _WHO_PREFIXES.get(context.record_id[:3], "")
        return _attach(kind, context.record_id, accounts)
    contact = record.contact_for(connector)
    if contact is None or contact.ambiguous:
        return None, None
    return _attach(contact.record_type, contact.record_id, accounts)


def _attach(
    kind: str, record_id: str, accounts: Mapping[str, str]
) -> tuple[str | None, str | None]:
    if kind == "Lead":
        return record_id, None
    if kind == "Contact":
        return record_id, accounts.get(record_id)
    return None, record_id


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


def description(record: CallRecord, contact: Contact | None) -> str:
    """A readable summary of the call: numbers, times, group, identity, recording."""
    call = record.call
    local = call.extension or call.user_id or "?"
    remote = call.remote_e164 or call.remote_number or "?"
    lines = [f"Direction: {call.direction.value}"]
    if call.direction is Direction.INBOUND:
        lines += [f"From: {remote}", f"To: extension {local}"]
    else:
        lines += [f"From: extension {local}", f"To: {remote}"]
    if call.remote_e164 and call.remote_number and call.remote_number != call.remote_e164:
        lines.append(f"Number as dialled/received: {call.remote_number}")
    if call.identity is not None and (call.identity.display_name or call.identity.department):
        who = call.identity.display_name
        if call.identity.department:
            who = f"{who} ({call.identity.department})" if who else call.identity.department
        lines.append(f"PBX identity: {who}")
    if call.group:
        lines.append(f"Group: {call.group}")
    lines += [
        f"Rang at: {_when(call.ring_at)}",
        f"Answered at: {_when(call.answer_at)}",
        f"Ended at: {_when(call.end_at)}",
        f"Ring time: {record.ring_s} s",
        f"Talk time: {record.duration_s} s",
        f"Outcome: {(call.outcome.value if call.outcome else 'unknown')}",
    ]
    if call.hung_up_by is not None:
        lines.append(f"Hung up by: {call.hung_up_by.value}")
    if record.recording_url:
        lines.append(f"Recording: {record.recording_url}")
    if contact is not None and contact.ambiguous:
        lines.append("Several records match this number; choose one and relate the Task:")
        lines += [f"  {c.record_type} {c.name} ({c.record_id})" for c in contact.candidates]
    if call.external_id:
        lines.append(f"Click-to-call id: {call.external_id}")
    lines.append(f"callbridge call: {call.key}")
    return "\n".join(lines)[:DESCRIPTION_MAX]


def subject(record: CallRecord, settings: SalesforceSettings, contact: Contact | None) -> str:
    """``Inbound call from +39...`` from the configured templates."""
    call = record.call
    template = {
        Direction.INBOUND: settings.subject_inbound,
        Direction.OUTBOUND: settings.subject_outbound,
        Direction.INTERNAL: settings.subject_internal,
    }[call.direction]
    number = call.remote_e164 or call.remote_number or "unknown number"
    name = contact.name if contact is not None and not contact.ambiguous else number
    text = template.format(number=number, name=name, extension=call.extension or "")
    return text[:SUBJECT_MAX]


def task_fields(
    record: CallRecord,
    settings: SalesforceSettings,
    *,
    connector: str,
    owner_id: str | None,
    accounts: Mapping[str, str],
    who_id: str | None = None,
) -> dict[str, Any]:
    """The Task's fields (without the external-id field, which goes into the upsert URL)."""
    call = record.call
    contact = record.contact_for(connector)
    who, what = target(record, connector, accounts)
    if who is None and what is None and who_id is not None:
        who = who_id
    day = call.ring_at or call.end_at or call.answer_at
    outcome = call.outcome.value if call.outcome else "unknown"
    fields: dict[str, Any] = {
        "Subject": subject(record, settings, contact),
        "TaskSubtype": "Call",
        "CallType": _CALL_TYPE[call.direction],
        "CallDurationInSeconds": max(0, int(record.duration_s)),
        "CallDisposition": settings.disposition(outcome),
        "CallObject": call.key,
        "Status": settings.task_status,
        "Priority": settings.task_priority,
        "Description": description(record, contact),
    }
    if day is not None:
        fields["ActivityDate"] = day.date().isoformat()
    if who:
        fields["WhoId"] = who
    if what:
        fields["WhatId"] = what
    if owner_id:
        fields["OwnerId"] = owner_id
    return fields
