"""Which user calls are legs of the same group call.

When a call rings a group, the PBX gives each member its own user call (own id, own events)
and nothing that names the group call as a whole. What the legs share is the company, the
``group`` parameter and the caller's number; what separates two group calls from the same
caller is time. So a ``GroupCall`` gathers legs with the same ``GroupKey`` whose ringing
overlaps or follows on within a small slack (members rung one after another by a hunt group
follow on exactly; a caller who rings again a minute later starts a new group call).

This module only keeps the clusters; the policy (hold, drop, one missed per group call) lives
in the tracker. Pure data: the Tracker's lock guards every use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..models import CallState
from .tracker_leg import GroupKey, Leg


@dataclass(slots=True, eq=False)
class GroupCall:
    """The legs of one call to a group, as far as the events let us tell."""

    key: GroupKey
    members: list[Leg] = field(default_factory=list)
    #: The leg finished as the group call's one missed activity (policy ``one``).
    representative: Leg | None = None
    #: The pending time of the next settlement check (only the latest one counts).
    next_check: datetime | None = None

    def answered_at(self) -> datetime | None:
        """When a member first answered, or None while nobody has."""
        times = [m.answer_at for m in self.members if m.answer_at is not None]
        return min(times) if times else None

    def held(self) -> list[Leg]:
        """Members holding back a missed end, in creation order."""
        return sorted((m for m in self.members if m.held), key=lambda m: m.seq)

    def ringing_until(self, now: datetime, cap: timedelta) -> list[datetime]:
        """For members still ringing (and not stale), the time they stop counting as ringing."""
        return [
            m.last_at + cap
            for m in self.members
            if m.state is CallState.RINGING and now < m.last_at + cap
        ]

    def accepts(self, at: datetime, slack: timedelta, cap: timedelta) -> bool:
        """Whether a leg that started at ``at`` belongs to this group call.

        A member's ringing phase ends when it is answered or ends; a member still ringing
        (and heard from within ``cap``) keeps the group call open.
        """
        start: datetime | None = None
        horizon: datetime | None = None
        ringing = False
        for m in self.members:
            ref = m.reference_time()
            start = ref if start is None else min(start, ref)
            if m.state is CallState.RINGING and at < m.last_at + cap:
                ringing = True
            stop = m.answer_at or m.end_at or m.last_at
            horizon = stop if horizon is None else max(horizon, stop)
        if start is None or horizon is None or at < start - slack:
            return False
        return ringing or at <= horizon + slack


class GroupIndex:
    """GroupKey -> the recent group calls with that key; places legs into them."""

    def __init__(self, *, slack: timedelta, cap: timedelta) -> None:
        self._slack = slack
        self._cap = cap
        self._calls: dict[GroupKey, list[GroupCall]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._calls.values())

    def place(self, leg: Leg) -> None:
        """Put a leg in the group call it belongs to now (or in none), moving it if needed."""
        key = leg.group_key()
        current = leg.cluster
        if current is not None and current.key == key:
            return
        if current is not None:
            self.forget(leg)
        if key is None:
            return
        at = leg.reference_time()
        calls = self._calls.setdefault(key, [])
        for call in reversed(calls):
            if call.accepts(at, self._slack, self._cap):
                call.members.append(leg)
                leg.cluster = call
                return
        call = GroupCall(key=key, members=[leg])
        calls.append(call)
        leg.cluster = call

    def forget(self, leg: Leg) -> None:
        """Take a leg out of its group call; drop the group call when it has no members."""
        call = leg.cluster
        if call is None:
            return
        leg.cluster = None
        if leg in call.members:
            call.members.remove(leg)
        if not call.members:
            calls = self._calls.get(call.key, [])
            if call in calls:
                calls.remove(call)
            if not calls:
                self._calls.pop(call.key, None)
