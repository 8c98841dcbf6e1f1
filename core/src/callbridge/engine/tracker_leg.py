"""One user call ("leg") as the tracker holds it while it lives: mutable and private.

The public ``Call`` is frozen, which suits hooks but not a state machine that sees thousands of
events per second; the tracker keeps a ``Leg`` per user call and hands out ``Call`` snapshots
only when it emits a change or is asked. Everything here is pure: no I/O, no clock, no locks
(the Tracker holds its lock around every use).

The trickiest part is *which side is which*. VOIspeed's ``number``/``ext`` swap meaning between
events (see ``callbridge.voispeed.events``), and for 18/19 the meaning depends on the direction
the call started with (16 or 17). When an 18/19 arrives before its 16/17 we must guess; we
record that the numbers are a guess so that the start event, when it comes, overwrites them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from ..models import Call, CallState, Direction, HungUpBy, Originate, Outcome
from ..numbers import digits, is_extension, to_e164
from ..voispeed.codes import Direction as PbxDirection
from ..voispeed.events import RECORDING, CallEvent, Identity

if TYPE_CHECKING:
    from .tracker_groups import GroupCall

#: The call events the tracker understands.
INCOMING, OUTGOING, ANSWERED, REJECTED, REMOTE_HANGUP, LOCAL_HANGUP = 16, 17, 18, 19, 20, 21
STARTS = frozenset({INCOMING, OUTGOING})
ENDS = frozenset({REJECTED, REMOTE_HANGUP, LOCAL_HANGUP})
CALL_EVENTS = STARTS | ENDS | {ANSWERED}

Resolution = Literal["finished", "dropped"]
#: A group call's identity as far as the events tell it: company, group name, remote number.
GroupKey = tuple[str, str, str]


def call_key(company_id: str | None, user_call_id: str, company: str | None = None) -> str:
    """``<company or '-'>:<user call id>``: the key of the first call with this user call id.

    A named company other than ``default`` prefixes its name (``acme.1:000012A0``, still a
    key that fits in a URL path): two PBXes may both have a company 1 with the same user
    call ids.

    The PBX reuses user call ids (its counters restart, and so do the monitor tables'
    AUTO_INCREMENT ids), so a later call with the same id gets a *generation* key instead:
    ``generation_key(call_key(...), first ring time)``. ``Tracker.key_for`` tells which key
    the events of a user call go to now.
    """
    scope = f"{company}." if company not in (None, "default") else ""
    return f"{scope}{company_id or '-'}:{user_call_id}"


#: The suffix of a generation key: the first ring's receipt time, compact UTC to the microsecond.
_STAMP = "%Y%m%dT%H%M%S.%fZ"
_STAMP_RE = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")


def generation_key(base: str, first_ring: datetime) -> str:
    """``<base>:<first ring as compact UTC>``: the key of a call that reused a user call id.

    Derived from the journaled receipt time of the ring that started it, never from the clock
    at processing time, so that handling the same events again (after a crash) gives the
    same key.
    """
    return f"{base}:{first_ring.astimezone(UTC).strftime(_STAMP)}"


def split_key(key: str) -> tuple[str, str | None]:
    """(base key, generation stamp or None): ``c:5:20240506T090000.000000Z`` -> (``c:5``, stamp)."""
    head, sep, tail = key.rpartition(":")
    if sep and head.count(":") >= 1 and _STAMP_RE.match(tail):
        return head, tail
    return key, None


def user_call_id_of(key: str) -> str:
    """The user call id a call key stands for, whatever its generation."""
    return split_key(key)[0].rpartition(":")[2]


def originate_belongs(event: CallEvent, originate: Originate) -> bool:
    """Whether ``event`` is of the leg a click-to-call placed: the caller's.

    Bound (``user_call_id`` known): only that user call. Otherwise an outgoing start (17) of
    the agent's extension, or an end (20/21) whose local side is the agent's extension. An
    incoming leg (16: the callee of an internal click-to-call, whose events may echo the same
    external id) never takes it, so exactly one activity lands on the clicked record.
    """
    if originate.user_call_id:
        return originate.user_call_id == event.call_id
    code = event.ssn_event
    if code == OUTGOING:
        return not originate.extension or event.local_number in ("", originate.extension)
    if code in (REMOTE_HANGUP, LOCAL_HANGUP):
        return bool(originate.extension) and event.local_number == originate.extension
    return False


def latest(*times: datetime | None) -> datetime:
    """The latest of the given times (at least one must be set)."""
    return max(t for t in times if t is not None)


@dataclass(slots=True, eq=False)
class Leg:
    """The tracker's working state for one user call (one key)."""

    key: str
    company_id: str | None
    user_call_id: str
    #: Creation order: breaks ties deterministically (the first leg that rang, output order).
    seq: int
    #: Last time anything was heard of the call: the base of its expiry.
    last_at: datetime
    #: The company's name (docs/companies.md).
    company: str = "default"
    #: The direction the PBX gave with 16/17; None until one of them arrives.
    pbx_direction: PbxDirection | None = None
    #: The direction guessed from an 18/19 that came before any 16/17.
    guessed_direction: PbxDirection | None = None
    #: The remote/local numbers were read from an 18/19 with a guessed direction.
    numbers_guessed: bool = False
    user_id: str | None = None
    extension: str | None = None
    remote_number: str = ""
    remote_e164: str | None = None
    #: 16's ``ext``: the number the caller dialled (an extension, a group's number, a DID).
    dialled_number: str | None = None
    #: ``extension`` is the user's, from the user map (not read from ``ext``/``number``).
    member_known: bool = False
    #: Whether the remote number is an internal extension (cached: asked on every snapshot).
    remote_internal: bool = False
    identity: Identity | None = None
    group: str | None = None
    external_id: str | None = None
    originate: Originate | None = None
    ring_at: datetime | None = None
    answer_at: datetime | None = None
    end_at: datetime | None = None
    state: CallState = CallState.RINGING
    rejected: bool = False
    #: Closed by expiry, not by an end event: the outcome is unknown unless it was answered.
    expired: bool = False
    hung_up_by: HungUpBy | None = None
    #: An event said the call is recorded (``cb_recording``); never unset.
    recorded: bool = False
    #: Set when the call is finished or dropped (and only then, except for a held leg's end).
    outcome: Outcome | None = None
    #: A missed group leg waiting to learn whether another member answered.
    held: bool = False
    resolution: Resolution | None = None
    resolved_at: datetime | None = None
    #: Bit ``1 << ssn_event`` for each event code already applied (duplicates are ignored).
    seen: int = 0
    cluster: GroupCall | None = field(default=None, repr=False)

    # ----------------------------------------------------------------- derived values

    def effective_pbx_direction(self) -> PbxDirection:
        """The start direction: given, else guessed, else outgoing for click-to-call."""
        if self.pbx_direction is not None:
            return self.pbx_direction
        if self.guessed_direction is not None:
            return self.guessed_direction
        if self.originate is not None or self.external_id is not None:
            return PbxDirection.OUTGOING
        return PbxDirection.INCOMING

    def direction(self) -> Direction:
        """Internal when the remote party is an extension, else in/outbound from the start."""
        if self.remote_internal:
            return Direction.INTERNAL
        if self.effective_pbx_direction() is PbxDirection.OUTGOING:
            return Direction.OUTBOUND
        return Direction.INBOUND

    def final_outcome(self) -> Outcome:
        """Answered if an 18 came; else rejected on 19; else unknown if expired; else missed."""
        if self.answer_at is not None:
            return Outcome.ANSWERED
        if self.rejected:
            return Outcome.REJECTED
        if self.expired:
            return Outcome.UNKNOWN
        return Outcome.MISSED

    def group_key(self) -> GroupKey | None:
        """What ties the legs of one group call together, or None for a non-group leg.

        Only legs that *arrive* (16, or an unknown start read as incoming) take part: an
        outgoing call made by a group member is that member's own call. Nor do calls from
        withheld numbers: grouping them could drop one anonymous caller's missed call because
        another anonymous caller was answered.
        """
        if not self.group or not self.remote_number:
            return None
        if self.effective_pbx_direction() is not PbxDirection.INCOMING:
            return None
        number = self.remote_e164 or digits(self.remote_number)
        if len(number.strip("+0")) < 2:
            return None  # withheld ("anonymous", "0"): two such callers cannot be told apart
        return (f"{self.company}/{self.company_id or ''}", self.group, number)

    def reference_time(self) -> datetime:
        """When the leg started, as well as we know it (ring, else answer, else end)."""
        return self.ring_at or self.answer_at or self.end_at or self.last_at

    def takes(self, originate: Originate) -> bool:
        """Whether the click-to-call ``originate`` is this leg's: the caller's leg only.

        An internal callee's events may echo the click's external id; its leg (incoming, or
        another extension) never takes the request, so one activity lands on the clicked
        record. Bound (``user_call_id`` known), only that user call takes it.
        """
        if originate.user_call_id:
            return originate.user_call_id == self.user_call_id
        if self.pbx_direction is PbxDirection.INCOMING:
            return False
        if originate.extension and self.extension and not self.numbers_guessed:
            return self.extension == originate.extension
        return True

    def has_seen(self, code: int) -> bool:
        """Whether an event with this code was already applied to the leg."""
        return bool(self.seen & (1 << code))

    def snapshot(self) -> Call:
        """The frozen public view of the leg (built without re-validation: we own the types)."""
        return Call.model_construct(
            key=self.key,
            company_id=self.company_id,
            company=self.company,
            user_call_id=self.user_call_id,
            direction=self.direction(),
            state=self.state,
            user_id=self.user_id,
            extension=self.extension,
            remote_number=self.remote_number,
            remote_e164=self.remote_e164,
            dialled_number=self.dialled_number,
            identity=self.identity,
            group=self.group,
            external_id=self.external_id,
            originate=self.originate,
            ring_at=self.ring_at,
            answer_at=self.answer_at,
            end_at=self.end_at,
            outcome=self.outcome,
            hung_up_by=self.hung_up_by,
            recorded=self.recorded,
        )

    # ----------------------------------------------------------------- absorbing events

    def _absorb_plain(self, event: CallEvent, member: str | None) -> None:
        """The fields an event fills when empty, whatever its code (``absorb``)."""
        if event.ssn_event == INCOMING and event.ext and self.dialled_number is None:
            self.dialled_number = event.ext
        if member and not self.member_known:
            self.extension = member
            self.member_known = True
        if event.sender_id and not self.user_id:
            self.user_id = event.sender_id
        if event.group and not self.group:
            self.group = event.group
        if event.ext_id and not self.external_id:
            self.external_id = event.ext_id
        if event.params.get(RECORDING) == "1":
            self.recorded = True

    def absorb(self, event: CallEvent, region: str, member: str | None = None) -> None:
        """Take the descriptive fields an event carries (never times or state).

        Values from 16/17/20/21 are authoritative; values from an 18/19 are authoritative only
        when the start direction is known. A field is filled when empty, and a guessed number
        is replaced by an authoritative one; nothing else is ever overwritten, so a repeated
        or late event cannot scramble what is known.

        ``member`` is the extension of the event's user from the user map (``tracker_users``):
        when given it is the leg's extension, over whatever the event's ``ext``/``number`` say
        (16's ``ext`` is the number called, a group's or a DID).
        """
        code = event.ssn_event
        self._absorb_plain(event, member)

        identity: Identity | None
        guessed = False
        if code in STARTS:
            if self.pbx_direction is None:
                self.pbx_direction = (
                    PbxDirection.INCOMING if code == INCOMING else PbxDirection.OUTGOING
                )
            remote, local, identity = event.remote_number, event.local_number, event.identity
        elif code in (REMOTE_HANGUP, LOCAL_HANGUP):
            # 20: identity of the one who hung up (remote); 21: of the one receiving it (remote).
            remote, local, identity = event.remote_number, event.local_number, event.identity
        else:
            start = self.pbx_direction
            if start is None:
                start = self._guess_direction(event)
                self.guessed_direction = start
                guessed = True
            remote, local = event.remote_number_for(start), event.local_number_for(start)
            # 18/19 carry the *callee's* identity: the remote party only on outgoing calls.
            identity = event.identity if start is PbxDirection.OUTGOING and not guessed else None

        replace = self.numbers_guessed and not guessed
        changed = False
        if remote and (not self.remote_number or replace):
            self.remote_number = remote
            self.remote_e164 = to_e164(remote, region)
            self.remote_internal = is_extension(remote)
            changed = True
        if local and not self.member_known and (not self.extension or replace):
            self.extension = local
            changed = True
        if changed:
            self.numbers_guessed = guessed
        if identity is not None and self.identity is None:
            self.identity = identity

    def _guess_direction(self, event: CallEvent) -> PbxDirection:
        """Read an 18/19 that came before 16/17: which side (callee/caller) is our user?

        In order: the local extension or remote number already known from a 20/21; a
        click-to-call (outgoing); the shape of the event (exactly one side an extension: that
        side is our user); else incoming, the common case for a PBX integration.
        """
        number, ext = event.number, event.ext
        if self.extension:
            if number == self.extension:
                return PbxDirection.INCOMING
            if ext == self.extension:
                return PbxDirection.OUTGOING
        if self.remote_number:
            if ext == self.remote_number:
                return PbxDirection.INCOMING
            if number == self.remote_number:
                return PbxDirection.OUTGOING
        if self.originate is not None or self.external_id is not None or event.ext_id:
            return PbxDirection.OUTGOING
        if ext and is_extension(ext) and not (number and is_extension(number)):
            return PbxDirection.OUTGOING
        return PbxDirection.INCOMING
