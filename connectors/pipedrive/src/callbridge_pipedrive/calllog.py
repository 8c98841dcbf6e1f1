"""What one finished call becomes in Pipedrive: the body of ``POST /v1/callLogs``.

Pure functions of the ``CallRecord``, so that what is logged can be read and tested in one
place. Pipedrive wants ``outcome``, ``to_phone_number``, ``start_time`` and ``end_time``
(UTC, ``YYYY-MM-DD HH:MM:SS``); ``duration`` is a string of seconds; ``note`` is HTML. Call
logs have no external id: the idempotency key goes into the note (``KEY_PREFIX``), where the
plugin looks for it before writing a call again.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Any

from callbridge import Call, CallRecord, Direction, Outcome, call_parties, summary_lines

#: The outcomes Pipedrive accepts (``AddCallLogRequest.outcome``).
OUTCOMES = frozenset(
    {"connected", "no_answer", "left_message", "left_voicemail", "wrong_number", "busy"}
)
#: How the idempotency key is written in the note (and found again).
KEY_PREFIX = "callbridge key: "


def outcome(call: Call) -> str:
    """answered -> connected; rejected -> busy; missed -> no_answer; unknown (the end event
    was lost) -> connected when it had been answered, else no_answer. Pipedrive has no
    "failed": a call that never connected is a no_answer there."""
    result = call.outcome or Outcome.UNKNOWN
    if result is Outcome.ANSWERED:
        return "connected"
    if result is Outcome.REJECTED:
        return "busy"
    if result is Outcome.UNKNOWN and call.answer_at is not None:
        return "connected"
    return "no_answer"


def pipedrive_time(moment: datetime) -> str:
    """``2025-03-04 09:30:00``: UTC, to the second, as Pipedrive wants it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def times(record: CallRecord) -> tuple[datetime, datetime]:
    """Start (ring, else answer, else end) and end of the call."""
    call = record.call
    start = call.ring_at or call.answer_at or call.end_at or datetime.now(UTC)
    end = call.end_at or start + timedelta(seconds=record.duration_s + record.ring_s)
    return start, max(start, end)


def subject(call: Call, result: str) -> str:
    """A short title for the call log."""
    remote = call.remote_e164 or call.remote_number or "unknown number"
    if call.direction is Direction.OUTBOUND:
        return f"{'Call to' if result == 'connected' else 'Unanswered call to'} {remote}"
    return f"{'Call from' if result == 'connected' else 'Missed call from'} {remote}"


def note(record: CallRecord, result: str, key: str) -> str:
    """The call log's HTML note: the core's summary lines, the recording, and the key."""
    lines = summary_lines(record, result.replace("_", " "))
    if record.recording_url:
        lines.append(f"Recording: {record.recording_url}")
    lines.append(KEY_PREFIX + key)
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


def body(
    record: CallRecord,
    *,
    key: str,
    person_id: str | None,
    org_id: str | None,
    deal_id: str | None,
    user_id: str | None,
) -> dict[str, Any]:
    """The whole ``POST /v1/callLogs`` body for ``record``."""
    call = record.call
    result = outcome(call)
    start, end = times(record)
    from_number, to_number = call_parties(call)
    payload: dict[str, Any] = {
        "outcome": result,
        "to_phone_number": to_number or "-",
        "start_time": pipedrive_time(start),
        "end_time": pipedrive_time(end),
        "duration": str(max(record.duration_s, 0)),
        "subject": subject(call, result),
        "note": note(record, result, key),
    }
    if from_number:
        payload["from_phone_number"] = from_number
    for name, value in (
        ("person_id", person_id),
        ("org_id", org_id),
        ("deal_id", deal_id),
        ("user_id", user_id),
    ):
        if value and value.isdigit():
            payload[name] = int(value)
    return payload


def holds_key(log: dict[str, Any], key: str) -> bool:
    """Whether a call log's note carries ``key`` (the HTML-escaped form we wrote)."""
    return (KEY_PREFIX + html.escape(key)) in str(log.get("note") or "")
