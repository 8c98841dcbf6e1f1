"""What the tracker reports (``Change``), and the limits it keeps calls in memory by."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from ..models import Call

ChangeKind = Literal["ringing", "answered", "ended", "finished", "dropped"]

#: How far apart two legs' ringing may at least be and still be one group call (receipt
#: jitter). The hand-over from one member to the next in a hunt group may take longer: the
#: slack is ``group_window`` when that is larger (a leg held for the window can still learn
#: of a member rung within it).
GROUP_SLACK = timedelta(seconds=3)
#: A group member still "ringing" after this long (its end event lost?) no longer holds back
#: the other members' missed legs; it will expire on its own.
GROUP_RING_CAP = timedelta(minutes=10)
#: How long a finished call stays whole in memory (late events still fill its fields, get()
#: still answers). After that only its key is remembered, for the tombstone retention.
KEEP_RESOLVED = timedelta(hours=1)
#: Keys of finished calls are remembered at least this long (and twice the call expiry).
MIN_TOMBSTONE_RETENTION = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Change:
    """Something the dispatcher must act on: what happened, and the call right after it."""

    kind: ChangeKind
    call: Call
