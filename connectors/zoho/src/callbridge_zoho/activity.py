"""What one finished call becomes in Zoho's Calls module: the record's fields.

Pure functions of the ``CallRecord`` (and a few settings), so that what is logged can be read
and tested in one place. Zoho's rules: ``Subject``, ``Call_Type`` (Inbound, Outbound, Missed)
and ``Call_Start_Time`` (ISO 8601 with an offset) are required; ``Call_Duration`` is
``mm:ss``; an Outbound call needs ``Outgoing_Call_Status`` (a logged one is Completed); the
Contact goes in ``Who_Id``, any other record (the Contact's Account, a Lead, an Account) in
``What_Id`` with its module in ``$se_module``.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from callbridge import Call, CallRecord, Direction, HungUpBy, Outcome, signature_line

#: Zoho keeps at most this many characters of a Description.
DESCRIPTION_MAX = 32_000


def outcome_name(call: Call) -> str:
    """answered, missed, busy, cancelled or failed: the key of ``CALL_RESULTS``."""
    outcome = call.outcome or Outcome.UNKNOWN
    if outcome is Outcome.ANSWERED:
        return "answered"
    if outcome is Outcome.REJECTED:
        return "busy"
    if outcome is Outcome.MISSED:
        if call.direction is Direction.OUTBOUND and call.hung_up_by is HungUpBy.LOCAL:
            return "cancelled"
        return "missed"
    return "answered" if call.answer_at is not None else "failed"


def call_type(call: Call) -> str:
    """Inbound or Outbound; an inbound call nobody answered is Missed."""
    if call.direction is Direction.OUTBOUND:
        return "Outbound"
    return "Inbound" if outcome_name(call) == "answered" else "Missed"


def duration(seconds: int) -> str:
    """``mm:ss`` (minutes may pass 59: ``75:03``), as Zoho's Call_Duration takes it."""
    seconds = max(seconds, 0)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def start_time(record: CallRecord, zone: tzinfo) -> str:
    """``2025-03-04T10:30:00+01:00``: the call's start in ``zone``, to the second."""
    call = record.call
    moment = record.started_at or call.ring_at or call.answer_at or call.end_at
    moment = moment or datetime.now(UTC)
    return moment.astimezone(zone).replace(microsecond=0).isoformat()


def _remote(call: Call) -> str:
    return call.remote_e164 or call.remote_number or "unknown number"


def subject(call: Call) -> str:
    """A short title for the timeline."""
    kind = outcome_name(call)
    if call.direction is Direction.OUTBOUND:
        verb = "Call to" if kind == "answered" else "Unanswered call to"
        return f"{verb} {_remote(call)}"
    return f"{'Call' if kind == 'answered' else 'Missed call'} from {_remote(call)}"


def description(record: CallRecord, notes: list[str] | None = None) -> str:
    """Numbers, outcome, agent, candidates, and last the call's signature line."""
    call = record.call
    contact = record.contact_for("zoho")
    lines = list(notes or [])
    lines += [
        f"Direction: {call.direction.value}",
        f"Remote number: {_remote(call)}",
        f"Extension: {call.extension or call.user_id or '-'}",
        f"Outcome: {outcome_name(call)}",
        f"Talk time: {record.duration_s} s, ring time: {record.ring_s} s",
    ]
    if call.group:
        lines.append(f"Group: {call.group}")
    if record.recording_url:
        lines.append(f"Recording: {record.recording_url}")
    if contact is not None and contact.ambiguous:
        lines.append("Several records match this number; relate the call to the right one:")
        lines += [f"  {c.record_type} {c.name} ({c.record_id})" for c in contact.candidates]
    if call.external_id:
        lines.append(f"Click-to-call id: {call.external_id}")
    lines.append(f"callbridge call: {call.key}")
    last = signature_line(record)
    text = "\n".join(lines)
    if len(text) + len(last) + 1 > DESCRIPTION_MAX:
        text = text[: DESCRIPTION_MAX - len(last) - 2] + "…"
    return f"{text}\n{last}"


def fields(
    record: CallRecord,
    *,
    key_field: str,
    key: str,
    zone: tzinfo,
    owner_id: str | None,
    who: str | None,
    what: tuple[str, str] | None,
    call_results: dict[str, str],
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Every field of the Calls record for ``record``.

    ``who``: a Contact's id; ``what``: ``(module, id)`` of the related record.
    """
    call = record.call
    kind = call_type(call)
    data: dict[str, Any] = {
        "Subject": subject(call),
        "Call_Type": kind,
        "Call_Start_Time": start_time(record, zone),
        "Description": description(record, notes),
        key_field: key,
    }
    if kind != "Missed":
        data["Call_Duration"] = duration(record.duration_s)
    if kind == "Outbound":
        data["Outgoing_Call_Status"] = "Completed"
        data["Dialled_Number"] = _remote(call)
    else:
        data["Caller_ID"] = _remote(call)
    result = call_results.get(outcome_name(call))
    if result:
        data["Call_Result"] = result
    if owner_id:
        data["Owner"] = {"id": owner_id}
    if who:
        data["Who_Id"] = {"id": who}
    if what is not None:
        data["What_Id"] = {"id": what[1]}
        data["$se_module"] = what[0]
    return data
