"""The Task a finished call becomes, field by field, following Salesforce's own rules.

Pure functions: no I/O here, so what lands in Salesforce can be read (and tested) in one place.

- WhoId is a Contact or a Lead; WhatId is anything else (Account, Opportunity, Case...).
- A Lead WhoId forbids a WhatId (Salesforce answers FIELD_INTEGRITY_EXCEPTION).
- A click-to-call lands on the record the agent clicked from (``call.crm_context``), never on
  whatever a number lookup found.
- An ambiguous lookup is not attached to a guess: the candidates go into the Description.
- What a record is comes from its id prefix (003 Contact, 00Q Lead, 001 Account...) before
  the ``record_type`` a page sent, which is read in any case: a Contact never lands in WhatId.
- Every text field is cut to its Salesforce length; the key (CallObject, the external id)
  is never cut blindly: one too long keeps its head and gets a hash of the whole.
- ActivityDate is the call's day in the org's time zone (or the configured one), not UTC's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from callbridge import CallRecord, Contact, Direction, signature_line

from .settings import SalesforceSettings

_CALL_TYPE = {
    Direction.INBOUND: "Inbound",
    Direction.OUTBOUND: "Outbound",
    Direction.INTERNAL: "Internal",
}

#: Id prefixes of standard objects (the first three characters of every record id).
ID_PREFIXES = {
    "003": "Contact",
    "00Q": "Lead",
    "001": "Account",
    "006": "Opportunity",
    "500": "Case",
    "701": "Campaign",
    "800": "Contract",
}
_KINDS = {name.lower(): name for name in ID_PREFIXES.values()}

#: Task field lengths: a longer value is refused with STRING_TOO_LONG.
SUBJECT_MAX = 255
CALL_OBJECT_MAX = 255
CALL_DISPOSITION_MAX = 255
#: A custom Text external-id field holds at most 255 characters.
EXTERNAL_ID_MAX = 255
DESCRIPTION_MAX = 32_000
_HASH_LENGTH = 24


def bounded_key(key: str, limit: int = CALL_OBJECT_MAX) -> str:
    """``key``, or when longer than ``limit`` its head, ``#`` and a hash of the whole.

    Still one value per call (the hash covers everything), and readable as far as it fits.
    """
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:_HASH_LENGTH]
    return key[: limit - _HASH_LENGTH - 1] + "#" + digest


def activity_key(record: CallRecord, connector: str, *, alternate: bool = False) -> str:
    """The Task's CallObject and external id: the record's idempotency key, bounded."""
    return bounded_key(record.idempotency_key(connector, alternate=alternate))


def record_kind(record_type: str, record_id: str) -> str:
    """``Contact``, ``Lead``, ``Account``... for a clicked record.

    The id's prefix says what a standard record is, whatever the page sent; otherwise the
    type is read in any case (``contact``, ``CONTACT``) or as a prefix (``003``).
    """
    by_prefix = ID_PREFIXES.get(record_id.strip()[:3])
    if by_prefix is not None:
        return by_prefix
    name = record_type.strip()
    return ID_PREFIXES.get(name) or _KINDS.get(name.lower(), name)


def target(
    record: CallRecord, connector: str, accounts: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """``(WhoId, WhatId)`` for the Task of ``record``."""
    context = record.call.crm_context
    if context is not None and context.connector == connector:
        kind = record_kind(context.record_type, context.record_id)
        return _attach(kind, context.record_id, accounts)
    contact = record.contact_for(connector)
    if contact is None or contact.ambiguous:
        return None, None
    return _attach(record_kind(contact.record_type, contact.record_id), contact.record_id, accounts)


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
        f"Ring time: {_seconds(record.ring_ms)} s",
        f"Talk time: {_seconds(record.duration_ms)} s",
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
    # Last, and short: a Task found under this call's key is adopted only if it carries it.
    lines.append(signature_line(record))
    text = "\n".join(lines)
    if len(text) > DESCRIPTION_MAX:
        keep = DESCRIPTION_MAX - len(lines[-1]) - 2
        text = text[:keep] + "…\n" + lines[-1]
    return text


def with_note(description: str, note: str) -> str:
    """``description`` with ``note`` first, within the field's length (signature kept)."""
    text = f"{note}\n{description}"
    if len(text) <= DESCRIPTION_MAX:
        return text
    head, _, last = text.rpartition("\n")
    return head[: DESCRIPTION_MAX - len(last) - 2] + "…\n" + last


def _seconds(ms: int) -> int:
    """Whole seconds, rounded to the nearest (Salesforce takes no fractions)."""
    return (max(0, ms) + 500) // 1000


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
    zone: tzinfo = UTC,
    key: str | None = None,
) -> dict[str, Any]:
    """The Task's fields (without the external-id field, which goes into the upsert URL).

    ``zone``: the org's time zone, for ActivityDate. ``key``: the CallObject (default: the
    record's bounded activity key).
    """
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
        "CallDurationInSeconds": _seconds(record.duration_ms),
        "CallDisposition": settings.disposition(outcome)[:CALL_DISPOSITION_MAX],
        "CallObject": key or activity_key(record, connector),
        "Status": settings.task_status,
        "Priority": settings.task_priority,
        "Description": description(record, contact),
    }
    if day is not None:
        fields["ActivityDate"] = day.astimezone(zone).date().isoformat()
    if who:
        fields["WhoId"] = who
    if what:
        fields["WhatId"] = what
    if owner_id:
        fields["OwnerId"] = owner_id
    return fields


def wrapup_fields(
    record: CallRecord, connector: str, accounts: Mapping[str, str]
) -> dict[str, Any]:
    """The Task fields the agent's wrap-up (``record.wrapup``) or a late recording
    changes, for a PATCH.

    Notes go first in the Description (the call's summary and signature stay under them);
    the outcome is the CallDisposition; a chosen Contact, Lead or other record re-parents
    the Task as ``target`` would have (a Lead forbids a WhatId), and a related record
    (Opportunity, Case...) becomes its WhatId.
    """
    wrapup = record.wrapup
    if wrapup is None:
        # A late recording only: the Description gains its link line.
        contact = record.contact_for(connector)
        return {"Description": description(record, contact)} if record.recording_url else {}
    chosen = wrapup.record_for(connector)
    contact = record.contact_for(connector)
    text = description(record, None if chosen else contact)
    if wrapup.notes.strip():
        text = with_note(text, f"Notes (wrap-up {wrapup.revision}):\n{wrapup.notes.strip()}\n")
    fields: dict[str, Any] = {"Description": text}
    if wrapup.outcome:
        fields["CallDisposition"] = wrapup.outcome[:CALL_DISPOSITION_MAX]
    who: str | None = None
    if chosen is not None:
        who, what = _attach(
            record_kind(chosen.record_type, chosen.record_id), chosen.record_id, accounts
        )
        fields["WhoId"], fields["WhatId"] = who, what
    related = wrapup.related_for(connector)
    if related is not None and not (who and record_kind("", who) == "Lead"):
        fields["WhatId"] = related.record_id
    return fields
