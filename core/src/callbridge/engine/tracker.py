"""The call tracker: PBX call events in, call state changes out.

The dispatcher feeds every call event (16-21) to ``Tracker.apply`` and calls ``Tracker.tick``
now and then; both return the ``Change``s the event or the passing of time caused:

- ``ringing`` / ``answered`` / ``ended``: the call's state moved; drive screen-pops.
- ``finished``: write the activity now. Emitted at most once per user call, ever.
- ``dropped``: a missed group leg that is not logged (another member answered, or the group
  call's one missed activity is another leg's).

Real event streams repeat, reorder and lose events; the rules that make the output right
anyway are written down in ``docs/call-tracking.md``. The tracker is pure logic: no I/O of
its own (the ``originates`` lookup is the caller's), no threads, no wall clock (time comes
in as arguments), deterministic. One lock makes it safe to call from worker threads.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Literal

from ..models import Call, CallState, HungUpBy, Originate
from ..settings import TrackerSettings
from ..voispeed.codes import Direction as PbxDirection
from ..voispeed.events import (
    HANGUP_UNKNOWN,
    USER_EXTENSION,
    CallEvent,
    CallRejected,
    DeviceEvent,
)
from .tracker_change import (
    GROUP_RING_CAP,
    GROUP_SLACK,
    KEEP_RESOLVED,
    MIN_TOMBSTONE_RETENTION,
    Change,
    ChangeKind,
)
from .tracker_groups import GroupCall, GroupIndex
from .tracker_leg import (
    ANSWERED,
    CALL_EVENTS,
    LOCAL_HANGUP,
    REJECTED,
    STARTS,
    Leg,
    call_key,
    generation_key,
    latest,
    split_key,
)
from .tracker_lineage import Lineages
from .tracker_restore import (
    check_restorable,
    duration_s,
    last_heard,
    reference,
    require_aware,
    restored_leg,
    ring_s,
)
from .tracker_users import UserMap

__all__ = [
    "GROUP_RING_CAP",
    "GROUP_SLACK",
    "KEEP_RESOLVED",
    "MIN_TOMBSTONE_RETENTION",
    "Change",
    "ChangeKind",
    "Tracker",
    "call_key",
    "duration_s",
    "generation_key",
    "ring_s",
]

#: A deadline is for a leg (by key, so that forgotten legs are not kept alive) or a group call.
_DeadlineRef = str | GroupCall


class Tracker:
    """One ``Call`` per user call (id and company, and generation), built from messy events.

    The PBX reuses user call ids. A ring (16/17) for an id whose call has ended and has heard
    nothing for ``settings.reuse_after`` seconds starts a new call, keyed
    ``generation_key(base, ring time)``; later events of that id go to it. The first call of
    an id keeps the plain ``call_key``.

    ``originates(external_id)`` returns the click-to-call request with that external id, or
    None; it is called outside the lock, at most once per event, while the call has none.

    ``calls(key)`` returns the call the journal saved under a key, or None. It lets the
    tracker see calls it no longer holds (settled before a restart, or forgotten): asked
    outside the lock for the first event of a user call id the tracker does not know, so
    that a reused id after a restart still gets a call of its own, and events handled again
    after a crash are absorbed by the call they belong to. Without it (tests), the tracker
    knows only what it saw or was given by ``restore``.
    """

    def __init__(
        self,
        settings: TrackerSettings,
        *,
        region: str,
        originates: Callable[[str], Originate | None],
        calls: Callable[[str], Call | None] | None = None,
    ) -> None:
        self._expiry = timedelta(seconds=settings.call_expiry)
        self._reuse_after = timedelta(seconds=settings.reuse_after)
        self._calls = calls
        self._window = timedelta(seconds=settings.group_window)
        self._one_missed = settings.group_missed == "one"
        self._retention = max(MIN_TOMBSTONE_RETENTION, 2 * self._expiry)
        self._max_resolved = settings.max_finished
        self._max_tombstones = settings.max_forgotten
        self._region = region
        self._originates = originates
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._legs: dict[str, Leg] = {}
        self._groups = GroupIndex(slack=max(GROUP_SLACK, self._window), cap=GROUP_RING_CAP)
        #: (when, order, leg key or group call): expiries, group checks, restored leftovers.
        self._deadlines: list[tuple[datetime, int, _DeadlineRef]] = []
        self._resolved: deque[tuple[datetime, Leg]] = deque()
        self._tombstones: dict[str, datetime] = {}
        self._tombstone_queue: deque[tuple[datetime, str]] = deque()
        #: Base key (``call_key``) -> the newest call of that user call id.
        self._lineages = Lineages(self._reuse_after)
        #: PBX user -> extension (setting, and learnt from login events): whose call it is.
        self._users = UserMap(settings.user_extensions)

    # ------------------------------------------------------------------ public API

    def apply(self, event: CallEvent, at: datetime) -> list[Change]:
        """Apply one call event received at ``at``; return the changes it caused, in order.

        Raises TypeError for an event that is not a call event (16-21) and ValueError for a
        naive ``at``; in both cases nothing changes.
        """
        if not isinstance(event, CallEvent) or event.ssn_event not in CALL_EVENTS:
            raise TypeError(f"the tracker takes call events (16-21), got {type(event).__name__}")
        require_aware(at, "at")
        base = call_key(event.company_id, event.call_id, event.company)
        saved = self._saved_calls(base, event.ssn_event, at)
        originate: Originate | None = None
        if event.ext_id or saved:
            with self._lock:
                self._adopt(base, saved)
                key = self._lineages.route(base, event.ssn_event, at, self._legs)
                leg = self._legs.get(key)
                wanted = bool(event.ext_id) and (
                    (leg is None and key not in self._tombstones)
                    or (leg is not None and leg.originate is None)
                )
            if wanted and event.ext_id:
                originate = self._originates(event.ext_id)
                if originate is not None and originate.company != (event.company or "default"):
                    originate = None  # another company's request: never tied to this call
        with self._lock:
            key = self._lineages.route(base, event.ssn_event, at, self._legs)
            return self._apply(key, base, event, at, originate)

    def learn_device(self, event: DeviceEvent) -> None:
        """A login/logout (1, 2): remember the user's extension (its ``number``)."""
        with self._lock:
            self._users.learn(event)

    def tick(self, now: datetime) -> list[Change]:
        """Let time pass: expire silent calls, settle held group legs, forget old calls."""
        require_aware(now, "now")
        with self._lock:
            changes: list[Change] = []
            while self._deadlines and self._deadlines[0][0] <= now:
                when, _, ref = heapq.heappop(self._deadlines)
                if isinstance(ref, GroupCall):
                    if ref.next_check == when:
                        ref.next_check = None
                        changes += self._settle(ref, now)
                else:
                    leg = self._legs.get(ref)
                    if leg is not None:
                        changes += self._leg_due(leg, now)
            self._housekeeping(now)
            return changes

    def restore(self, calls: Iterable[Call]) -> None:
        """Load calls the journal still holds open after a restart.

        Calls already known are skipped; a call that ended with an outcome is taken as finished
        and never finishes again; an ended call without an outcome (a held group leg) is held
        again and settled by ``tick``. Raises ValueError, changing nothing, on a malformed call.
        """
        items = list(calls)
        for call in items:
            check_restorable(call)
        with self._lock:
            for call in sorted(items, key=lambda c: (reference(c), c.key)):
                if call.key not in self._legs and call.key not in self._tombstones:
                    self._restore_one(call)
            self._lineages.note(items)

    def key_for(self, company_id: str | None, user_call_id: str, company: str | None = None) -> str:
        """The key the events of this user call id go to now (its newest call's).

        ``call_key(company_id, user_call_id, company)`` until the id is reused, a generation
        key after.
        """
        with self._lock:
            return self._lineages.key_for(call_key(company_id, user_call_id, company))

    def get(self, key: str) -> Call | None:
        """The call with this key as it is now (kept for a while after it finished)."""
        with self._lock:
            leg = self._legs.get(key)
            return leg.snapshot() if leg is not None else None

    def open_calls(self) -> list[Call]:
        """Calls not yet finished or dropped (including held group legs), oldest first."""
        with self._lock:
            legs = [leg for leg in self._legs.values() if leg.resolution is None]
            legs.sort(key=lambda leg: leg.seq)
            return [leg.snapshot() for leg in legs]

    # ------------------------------------------------------------------ generations

    def _saved_calls(self, base: str, code: int, at: datetime) -> list[Call]:
        """The journal's ended calls of a user call id the tracker does not know (no lock).

        The base key's call; and when this event would start a new generation of it, that
        generation's call too (saved before a crash, now seen again).
        """
        if self._calls is None:
            return []
        with self._lock:
            if base in self._lineages:
                return []
        first = self._calls(base)
        if first is None or first.state is not CallState.ENDED:
            return []
        found = [first]
        if code in STARTS and at - last_heard(first) >= self._reuse_after:
            again = self._calls(generation_key(base, at))
            if again is not None and again.state is CallState.ENDED:
                found.append(again)
        return found

    def _adopt(self, base: str, saved: list[Call]) -> None:
        """Take saved calls as finished legs (restore's way), unless meanwhile known."""
        if not saved or base in self._lineages:
            return
        usable = []
        for call in saved:
            try:
                check_restorable(call)
            except ValueError:
                continue
            if split_key(call.key)[0] != base:
                continue
            usable.append(call)
            if call.key not in self._legs and call.key not in self._tombstones:
                self._restore_one(call)
        self._lineages.note(usable)

    # ------------------------------------------------------------------ events

    def _apply(
        self, key: str, base: str, event: CallEvent, at: datetime, originate: Originate | None
    ) -> list[Change]:
        code = event.ssn_event
        self._lineages.heard(base, key, at)
        leg = self._legs.get(key)
        created = leg is None
        if leg is None:
            if key in self._tombstones:
                return []  # finished long ago: forgotten, but never finished again
            leg = Leg(
                key=key,
                company_id=event.company_id,
                company=event.company or "default",
                user_call_id=event.call_id,
                seq=next(self._seq),
                last_at=at,
            )
            self._legs[key] = leg
            self._push(at + self._expiry, key)
        elif leg.has_seen(code):
            return []  # a repeat: the first one of each kind is the one that counts
        leg.seen |= 1 << code
        leg.absorb(event, self._region, self._member(event))
        if originate is not None and leg.originate is None and leg.takes(originate):
            leg.originate = originate
        if leg.resolution is not None:
            return []  # late event: it filled missing fields, nothing else
        if leg.state is not CallState.ENDED:
            leg.last_at = latest(leg.last_at, at)
            self._groups.place(leg)
        if code in STARTS:
            if leg.ring_at is None:
                leg.ring_at = min(t for t in (at, leg.answer_at, leg.end_at) if t is not None)
            return [Change("ringing", leg.snapshot())] if created else []
        if code == ANSWERED:
            return self._answer(leg, at)
        inferred = (
            isinstance(event, CallRejected) and not event.rejection_known
        ) or event.params.get(HANGUP_UNKNOWN) == "1"
        return self._end(leg, code, at, inferred=inferred)

    def _member(self, event: CallEvent) -> str | None:
        """The extension of the event's user: the ``users`` table's, else the user map's."""
        from_table = event.params.get(USER_EXTENSION, "").strip()
        return from_table or self._users.extension(event.sender_id)

    def _answer(self, leg: Leg, at: datetime) -> list[Change]:
        changes: list[Change] = []
        if leg.state is CallState.RINGING:
            leg.answer_at = latest(at, leg.ring_at)
            leg.state = CallState.ANSWERED
            changes.append(Change("answered", leg.snapshot()))
        elif leg.held and leg.end_at is not None:
            # The answer arrived after the hang-up but before the group hold ran out.
            leg.answer_at = latest(min(at, leg.end_at), leg.ring_at)
            changes.append(self._resolve(leg, "finished", at))
        else:
            return changes
        if leg.cluster is not None:
            changes += self._settle(leg.cluster, at)
        return changes

    def _end(self, leg: Leg, code: int, at: datetime, *, inferred: bool = False) -> list[Change]:
        """An end event. ``inferred``: a 19 that only says "never answered" (a missed call)."""
        if leg.state is CallState.ENDED:
            return []
        leg.end_at = latest(at, leg.ring_at, leg.answer_at)
        leg.state = CallState.ENDED
        if inferred:
            leg.hung_up_by = HungUpBy.UNKNOWN
        elif code == REJECTED:
            leg.rejected = True
            leg.hung_up_by = {
                PbxDirection.INCOMING: HungUpBy.LOCAL,
                PbxDirection.OUTGOING: HungUpBy.REMOTE,
            }.get(leg.pbx_direction or PbxDirection.NONE, HungUpBy.UNKNOWN)
        else:
            leg.hung_up_by = HungUpBy.LOCAL if code == LOCAL_HANGUP else HungUpBy.REMOTE
        return self._closed(leg, at)

    def _closed(self, leg: Leg, now: datetime) -> list[Change]:
        """The leg just ended (event or expiry): finish it, drop it, or hold it.

        A group leg that ends unanswered is held whatever ended it: the PBX ends the members
        that did not answer with 19 as well as with 20/21, so a 19 there is no member's own
        "rejected" call but one more leg of the group call's single activity.
        """
        group = leg.cluster
        if group is None or leg.answer_at is not None:
            done = self._resolve(leg, "finished", now)
            changes = [Change("ended", done.call), done]
        elif group.answered_at() is not None or (
            self._one_missed and group.representative is not None
        ):
            done = self._resolve(leg, "dropped", now)
            changes = [Change("ended", done.call), done]
        else:
            leg.held = True
            changes = [Change("ended", leg.snapshot())]
        if group is not None:
            changes += self._settle(group, now)
        return changes

    # ------------------------------------------------------------------ groups

    def _settle(self, group: GroupCall, now: datetime) -> list[Change]:
        """Decide the held legs of a group call if the events allow it now, else schedule."""
        held = group.held()
        if not held:
            return []
        if group.answered_at() is not None or (
            self._one_missed and group.representative is not None
        ):
            return [self._resolve(m, "dropped", now) for m in held]
        due = max(latest(m.end_at, m.last_at) for m in held) + self._window
        ringing = group.ringing_until(now, GROUP_RING_CAP)
        if now < due or ringing:
            # A ringing member's end will settle again; the cap covers one that never ends.
            self._schedule(group, due if now < due else min(ringing))
            return []
        if not self._one_missed:
            return [self._resolve(m, "finished", now) for m in held]
        first = min(held, key=lambda m: (m.reference_time(), m.seq))
        group.representative = first
        first.rejected = False  # the group call was missed, whichever code ended this leg
        changes = [self._resolve(first, "finished", now)]
        changes += [self._resolve(m, "dropped", now) for m in held if m is not first]
        return changes

    def _schedule(self, group: GroupCall, when: datetime) -> None:
        if group.next_check != when:
            group.next_check = when
            self._push(when, group)

    # ------------------------------------------------------------------ time

    def _leg_due(self, leg: Leg, now: datetime) -> list[Change]:
        """A leg's deadline came: expire it if silent, or finish a restored leftover."""
        if leg.resolution is not None:
            return []
        if leg.state is CallState.ENDED:
            if leg.held and leg.cluster is not None:
                return self._settle(leg.cluster, now)
            return [self._resolve(leg, "finished", now)]
        due = leg.last_at + self._expiry
        if due > now:
            self._push(due, leg.key)
            return []
        leg.expired = True
        leg.end_at = latest(leg.last_at, leg.ring_at, leg.answer_at)
        leg.state = CallState.ENDED
        leg.hung_up_by = HungUpBy.UNKNOWN
        return self._closed(leg, now)

    def _resolve(self, leg: Leg, kind: Literal["finished", "dropped"], now: datetime) -> Change:
        """The one place a leg is finished or dropped: at most once, by construction."""
        if leg.resolution is not None:  # pragma: no cover - guarded by every caller
            raise AssertionError(f"{leg.key} resolved twice")
        leg.held = False
        leg.outcome = leg.final_outcome()
        leg.resolution = kind
        leg.resolved_at = now
        self._resolved.append((now, leg))
        return Change(kind, leg.snapshot())

    def _deadline_live(self, ref: _DeadlineRef) -> bool:
        """Whether a deadline may still do something (see ``tick`` and ``_leg_due``)."""
        if not isinstance(ref, str):
            return True
        leg = self._legs.get(ref)
        return leg is not None and leg.resolution is None

    def _push(self, when: datetime, ref: _DeadlineRef) -> None:
        heapq.heappush(self._deadlines, (when, next(self._seq), ref))

    def _housekeeping(self, now: datetime) -> None:
        """Forget finished calls after a while, keeping their keys as tombstones longer.

        Both are bounded by count too (``max_finished``, ``max_forgotten``): at a sustained
        load an hour of finished calls is hundreds of megabytes. What is forgotten early is
        still in the journal, where ``_saved_calls`` finds it for a late event.
        """
        while self._resolved and (
            self._resolved[0][0] + KEEP_RESOLVED <= now or len(self._resolved) > self._max_resolved
        ):
            when, leg = self._resolved.popleft()
            if self._legs.get(leg.key) is leg:
                del self._legs[leg.key]
                self._groups.forget(leg)
                self._tombstones[leg.key] = when
                self._tombstone_queue.append((when, leg.key))
        # Each call leaves its expiry deadline (hours away) in the heap after it finished;
        # at a sustained load those stale entries would outnumber the live ones a hundred
        # to one. Drop them when they are the majority: popping one would do nothing anyway.
        if len(self._deadlines) > 2 * len(self._legs) + 1024:
            self._deadlines = [d for d in self._deadlines if self._deadline_live(d[2])]
            heapq.heapify(self._deadlines)
        while self._tombstone_queue and (
            self._tombstone_queue[0][0] + self._retention <= now
            or len(self._tombstone_queue) > self._max_tombstones
        ):
            when, key = self._tombstone_queue.popleft()
            if self._tombstones.get(key) == when:
                del self._tombstones[key]
                base = split_key(key)[0]
                self._lineages.forget(base, key)

    # ------------------------------------------------------------------ restore

    def _restore_one(self, call: Call) -> None:
        """Hold a saved call again: open, finished before the restart, or a held group leg."""
        leg = restored_leg(call, next(self._seq))
        last = leg.last_at
        self._legs[call.key] = leg
        if leg.state is not CallState.ENDED:
            self._groups.place(leg)
            self._push(last + self._expiry, leg.key)
        elif leg.resolution == "finished":
            self._resolved.append((last, leg))
        else:
            self._groups.place(leg)
            leg.held = leg.cluster is not None and leg.answer_at is None
            self._push(last, leg.key)
