"""Calls given back to the tracker after a restart, and the checks it makes on its input.

Pure helpers of ``tracker.Tracker``: ``restored_leg`` turns a call the journal saved into the
leg the tracker holds (open, finished before the restart, or a held missed group leg);
``check_restorable`` refuses what ``restore`` cannot take. ``duration_s`` and ``ring_s``
measure a call for its log record.
"""

from __future__ import annotations

from datetime import datetime

from ..models import Call, CallState, Direction, HungUpBy, Outcome
from ..numbers import is_extension
from ..voispeed.codes import Direction as PbxDirection
from .tracker_leg import ANSWERED, Leg, call_key, latest, split_key


def duration_s(call: Call) -> int:
    """Seconds from answer to end, never negative; 0 when the call was not answered."""
    if call.answer_at is None or call.end_at is None or call.outcome is not Outcome.ANSWERED:
        return 0
    return max(0, int((call.end_at - call.answer_at).total_seconds()))


def ring_s(call: Call) -> int:
    """Seconds from ring to answer (or to end when unanswered); 0 when the ring is unknown."""
    if call.ring_at is None:
        return 0
    stop = call.answer_at or call.end_at
    if stop is None:
        return 0
    return max(0, int((stop - call.ring_at).total_seconds()))


def require_aware(value: datetime, name: str) -> None:
    """Raise ValueError unless ``value`` is a timezone-aware datetime."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def restored_leg(call: Call, seq: int) -> Leg:
    """The leg for a saved call; an ended one is marked as it ended (finished, or held)."""
    last = latest(call.ring_at, call.answer_at, call.end_at)
    start = {
        Direction.INBOUND: PbxDirection.INCOMING,
        Direction.OUTBOUND: PbxDirection.OUTGOING,
    }.get(call.direction)
    leg = Leg(
        key=call.key,
        company_id=call.company_id,
        company=call.company,
        user_call_id=call.user_call_id,
        seq=seq,
        last_at=last,
        user_id=call.user_id,
        extension=call.extension,
        remote_number=call.remote_number,
        remote_e164=call.remote_e164,
        dialled_number=call.dialled_number,
        remote_internal=bool(call.remote_number) and is_extension(call.remote_number),
        identity=call.identity,
        group=call.group,
        external_id=call.external_id,
        originate=call.originate,
        ring_at=call.ring_at,
        answer_at=call.answer_at,
        end_at=call.end_at,
        state=call.state,
        hung_up_by=call.hung_up_by,
        recorded=call.recorded,
    )
    if call.ring_at is not None:
        leg.pbx_direction = start
        if start is not None:
            leg.seen |= 1 << (16 if start is PbxDirection.INCOMING else 17)
    else:
        leg.guessed_direction = start
        leg.numbers_guessed = True
    if call.answer_at is not None:
        leg.seen |= 1 << ANSWERED
    if call.state is CallState.ENDED:
        _mark_ended(leg, call, last)
    return leg


def _mark_ended(leg: Leg, call: Call, last: datetime) -> None:
    if call.outcome is not None:
        # Ended with an outcome: it was finished (or dropped) before the restart.
        leg.outcome = call.outcome
        leg.rejected = call.outcome is Outcome.REJECTED
        leg.expired = call.outcome is Outcome.UNKNOWN
        leg.resolution = "finished"
        leg.resolved_at = last
        return
    # Ended without an outcome: a held missed group leg (or an end whose finish was lost).
    leg.expired = call.hung_up_by in (None, HungUpBy.UNKNOWN)


def reference(call: Call) -> datetime:
    """When a call started, for ordering restored calls deterministically."""
    return latest(call.ring_at or call.answer_at or call.end_at)


def last_heard(call: Call) -> datetime:
    """The latest time a saved call knows of (its last event, as far as it tells)."""
    return latest(call.ring_at, call.answer_at, call.end_at)


def check_restorable(call: Call) -> None:
    """Raise ValueError unless ``restore`` can take the call."""
    if not isinstance(call, Call):
        raise ValueError(f"restore takes Call objects, got {type(call).__name__}")
    if split_key(call.key)[0] != call_key(call.company_id, call.user_call_id, call.company):
        raise ValueError(
            f"call key {call.key!r} does not match company "
            f"{call.company_id!r} and user call id {call.user_call_id!r}"
        )
    times = [t for t in (call.ring_at, call.answer_at, call.end_at) if t is not None]
    if not times:
        raise ValueError(f"call {call.key}: no ring, answer or end time to restore from")
    for t in times:
        require_aware(t, f"call {call.key} times")
    if call.state is CallState.ENDED and call.end_at is None:
        raise ValueError(f"call {call.key}: ended without an end time")
