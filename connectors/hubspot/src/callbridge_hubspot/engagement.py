"""What one finished call becomes in HubSpot: the call engagement's properties.

Pure functions of the ``CallRecord`` (and a few settings), so that what is logged can be read
and tested in one place. HubSpot takes every property as a string; durations are in
milliseconds; ``hs_timestamp`` (required) places the call on the timeline at its start.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from callbridge import (
    Call,
    CallRecord,
    Direction,
    HungUpBy,
    Outcome,
    call_parties,
    summary_lines,
)

from .settings import Dispositions

#: The values HubSpot accepts for hs_call_status that a finished call can have.
COMPLETED, NO_ANSWER, BUSY, FAILED, CANCELED = (
    "COMPLETED",
    "NO_ANSWER",
    "BUSY",
    "FAILED",
    "CANCELED",
)


def call_status(call: Call) -> str:
    """``hs_call_status`` for how the call ended.

    answered -> COMPLETED; rejected -> BUSY; missed -> NO_ANSWER, except an outbound call the
    agent hung up before the other side answered (CANCELED); unknown (the end event was lost)
    -> COMPLETED when it had been answered, else FAILED.
    """
    outcome = call.outcome or Outcome.UNKNOWN
    if outcome is Outcome.ANSWERED:
        return COMPLETED
    if outcome is Outcome.REJECTED:
        return BUSY
    if outcome is Outcome.MISSED:
        if call.direction is Direction.OUTBOUND and call.hung_up_by is HungUpBy.LOCAL:
            return CANCELED
        return NO_ANSWER
    return COMPLETED if call.answer_at is not None else FAILED


def disposition(status: str, dispositions: Dispositions) -> str | None:
    """``hs_call_disposition`` (the call outcome GUID) for a status, when one fits."""
    return {
        COMPLETED: dispositions.connected,
        NO_ANSWER: dispositions.no_answer,
        CANCELED: dispositions.no_answer,
        BUSY: dispositions.busy,
    }.get(status)


def _remote_party(call: Call) -> str:
    return call.remote_e164 or call.remote_number


def numbers(call: Call) -> tuple[str, str]:
    """``(from, to)``: the remote number on one side, the agent's extension on the other."""
    return call_parties(call)


def title(call: Call, status: str) -> str:
    """A short, human title for the timeline."""
    remote = _remote_party(call) or "unknown number"
    if call.direction is Direction.OUTBOUND:
        verb = "Call to" if status == COMPLETED else "Unanswered call to"
        return f"{verb} {remote}"
    if status == COMPLETED:
        return f"Call from {remote}"
    return f"Missed call from {remote}"


def _timestamp(call: Call) -> datetime:
    return call.ring_at or call.answer_at or call.end_at or datetime.now(UTC)


def iso_ms(moment: datetime) -> str:
    """``2024-05-01T09:30:00.000Z``, the form HubSpot shows back."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def body(record: CallRecord, status: str) -> str:
    """``hs_call_body`` (rich text): numbers, group, the PBX identity, outcome and the key."""
    lines = summary_lines(record, status.lower().replace("_", " "))
    if record.recording_url and not record.recording_url.startswith("https://"):
        lines.insert(-1, f"Recording: {record.recording_url}")
    return "<br>".join(html.escape(line) for line in lines)


def properties(
    record: CallRecord,
    *,
    external_id: str,
    dispositions: Dispositions,
    owner_id: str | None,
) -> dict[str, str]:
    """Every property of the engagement for ``record``."""
    call = record.call
    status = call_status(call)
    from_number, to_number = numbers(call)
    props: dict[str, str] = {
        "hs_timestamp": iso_ms(_timestamp(call)),
        "hs_call_title": title(call, status),
        "hs_call_body": body(record, status),
        "hs_call_direction": "OUTBOUND" if call.direction is Direction.OUTBOUND else "INBOUND",
        "hs_call_duration": str(max(record.duration_ms, 0)),
        "hs_call_status": status,
        "hs_call_external_id": external_id,
    }
    if from_number:
        props["hs_call_from_number"] = from_number
    if to_number:
        props["hs_call_to_number"] = to_number
    chosen = disposition(status, dispositions)
    if chosen:
        props["hs_call_disposition"] = chosen
    # HubSpot plays back only HTTPS recordings; others go into the body.
    if record.recording_url and record.recording_url.startswith("https://"):
        props["hs_call_recording_url"] = record.recording_url
    if owner_id:
        props["hubspot_owner_id"] = owner_id
    return props


def wrapup_properties(record: CallRecord, status: str) -> dict[str, str]:
    """The engagement properties the agent's wrap-up and a late recording change, for a PATCH.

    Notes go first in ``hs_call_body`` (the call's summary stays under them); the outcome is
    ``hs_call_disposition``: a value of the account's own list (the calling page offers it);
    the recording is ``hs_call_recording_url`` when HTTPS, else a line of the body. Nothing
    to change (no wrap-up, no recording): ``{}``.
    """
    wrapup = record.wrapup
    if wrapup is None and not record.recording_url:
        return {}
    text = body(record, status)
    props: dict[str, str] = {}
    notes = wrapup.notes.strip() if wrapup else ""
    if wrapup and notes:
        shown = "<br>".join(html.escape(line) for line in notes.splitlines())
        text = f"<p><b>Notes (wrap-up {wrapup.revision})</b><br>{shown}</p>{text}"
    props["hs_call_body"] = text
    if wrapup and wrapup.outcome:
        props["hs_call_disposition"] = wrapup.outcome
    if record.recording_url and record.recording_url.startswith("https://"):
        props["hs_call_recording_url"] = record.recording_url
    return props
