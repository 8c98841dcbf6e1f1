"""The call engine of the simulated PBX: calls, user legs, and the events they emit.

A *call* (``SimCall``, with its own call id) has one *leg* per PBX user involved (``Leg``, with
an 8-character user call id: the id events carry as ``call_id`` and SOAP commands take).
External parties have no leg; they are a ``Party`` (number and identity) at the other end of
a user's leg.

Every state change emits the ssn_events the document describes, from each user's point of
view, to one ``EventSink``. ``number``/``ext`` follow the document's table (see
``callbridge.voispeed.events``):

- 16 incoming: number = caller, ext = the user;   17 outgoing: number = recipient, ext = the user
- 18 answered / 19 rejected: number = callee, ext = caller (so they swap with the direction)
- 20 remote hang-up: number = the remote sender, ext = the user
- 21 local hang-up: number = the remote receiver, ext = the user

Choices where the document is silent (documented in docs/simulator.md): the ringing legs of
group members who did not answer, and a ringing leg taken by CallPick, end with 20 (the call
went away from them); a diverted leg ends with 21 (its user acted); hold, retrieve, device
switch and recording change state only (the document lists no event for them).

Other readings a real PBX may follow are switches, so that callbridge is tested against them
too: ``ext_reading="dialled"`` puts the number called (a group's number, a DID) in 16's
``ext`` instead of the member's extension (the document says "number called");
``group_end=19`` ends the legs of the group members who did not answer with 19; a group with
a ring mode other than ``ALL`` is a hunt group that rings one member at a time
(``hunt_next``), with whatever gap the caller of ``hunt_next`` leaves between them.

The engine is synchronous and thread-safe: every public method runs under one lock and emits
before it returns, so tests can drive it step by step; the ``Simulator`` adds the SOAP server
and real time on top.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from ..settings import SeriSettings
from ..voispeed.codes import (
    CallableType,
    CallStatus,
    Direction,
    RingMode,
    SsnEvent,
    UserCallStatus,
)
from ..voispeed.ids import InvalidIdentifier, normalize_id, validate_external_id
from .emitter import EventSink, MemorySink
from .model import Device, Directory, Group, User, default_directory
from .seri import seri_event

#: See ``CallEngine.ext_id_mode``.
ExtIdMode = Literal["caller", "every_leg", "none"]
EXT_ID_MODES: tuple[ExtIdMode, ...] = ("caller", "every_leg", "none")


class SimError(ValueError):
    """A request the simulated PBX refuses (unknown call, wrong state, ...): a SOAP Fault."""


class LegState(StrEnum):
    """A user's leg, as the simulator tracks it."""

    RINGING = "ringing"
    ACTIVE = "active"
    HELD = "held"
    ENDED = "ended"


_LEG_STATUS = {
    LegState.RINGING: UserCallStatus.CONNECTING,
    LegState.ACTIVE: UserCallStatus.ACTIVE,
    LegState.HELD: UserCallStatus.HOLD,
    LegState.ENDED: UserCallStatus.CLOSED,
}


def external_identity(caller_name: str | None) -> str:
    """Identity of an external party: ``Name|Surname|Department|0|0``.

    ``caller_name`` is either already pipe-separated (``Anna|Neri|ACME Spa``) or free text whose
    first word is the name and the rest the surname.
    """
    if not caller_name:
        return "|||0|0"
    if "|" in caller_name:
        parts = [p.strip() for p in caller_name.split("|")][:5]
        parts += ["", "", "", "0", "0"][len(parts) :]
        return "|".join(parts)
    name, _, surname = caller_name.strip().partition(" ")
    return f"{name}|{surname.strip()}||0|0"


@dataclass(frozen=True)
class Party:
    """One end of a leg as its user sees it: a number, an identity, the user if internal."""

    number: str
    identity: str
    user: User | None = None

    @classmethod
    def of_user(cls, user: User) -> Party:
        """An internal party."""
        return cls(user.extension, user.identity, user)


@dataclass(eq=False)
class Leg:
    """One user's part in a call: what the monitor_user_calls row describes."""

    user_call_id: str
    user: User
    direction: Direction
    remote: Party
    call: SimCall
    ext_id: str = ""
    group: str = ""
    device_id: str | None = None
    #: Incoming legs: the number the caller dialled (the extension, a group's number, a DID).
    dialled: str = ""
    state: LegState = LegState.RINGING
    recording: bool = False
    answered: bool = False

    @property
    def status(self) -> UserCallStatus:
        """The ``monitor_user_calls.status`` value for this leg."""
        return _LEG_STATUS[self.state]

    @property
    def live(self) -> bool:
        """Not ended yet."""
        return self.state is not LegState.ENDED

    def __repr__(self) -> str:
        return (
            f"Leg({self.user_call_id} {self.user.extension} {self.direction.name} "
            f"remote={self.remote.number} {self.state})"
        )


@dataclass(eq=False)
class SimCall:
    """A whole call: the caller, who it rings, and one leg per user involved."""

    call_id: str
    caller: Party
    #: The number dialled (an extension, a group number or an external number).
    target: str
    ext_id: str = ""
    legs: list[Leg] = field(default_factory=list)
    answered: bool = False
    #: Set when CallTransfer joined this call into another one.
    merged_into: SimCall | None = None

    @property
    def ended(self) -> bool:
        """No live leg is left."""
        return not any(leg.live for leg in self.legs)

    @property
    def status(self) -> CallStatus:
        """The ``monitor_calls.status`` value for this call."""
        if self.ended:
            return CallStatus.TERMINATED
        return CallStatus.ACTIVE if self.answered else CallStatus.INCOMING

    @property
    def live_legs(self) -> list[Leg]:
        """Legs not ended yet."""
        return [leg for leg in self.legs if leg.live]

    @property
    def caller_leg(self) -> Leg | None:
        """The leg of an internal caller (direction outgoing), if any."""
        return next((leg for leg in self.legs if leg.direction is Direction.OUTGOING), None)

    def legs_of(self, extension: str) -> list[Leg]:
        """Every leg of the user at ``extension``, oldest first."""
        return [leg for leg in self.legs if leg.user.extension == extension]

    def resolved(self) -> SimCall:
        """This call, or the call it was joined into by a transfer."""
        call = self
        while call.merged_into is not None:
            call = call.merged_into
        return call

    def __repr__(self) -> str:
        return f"SimCall({self.call_id} from={self.caller.number} to={self.target} {self.legs})"


HangupSide = Literal["local", "remote"]
ExtReading = Literal["extension", "dialled"]
GroupEnd = Literal[19, 20]
OutgoingListener = Callable[[SimCall], None]


class CallEngine:
    """The simulated PBX's calls. Every method is synchronous and emits before returning."""

    def __init__(
        self,
        directory: Directory | None = None,
        sink: EventSink | None = None,
        *,
        company_param: str = "company_id",
        ext_reading: ExtReading = "extension",
        group_end: GroupEnd = 20,
        dialect: Literal["soap", "seri"] = "soap",
        seri: SeriSettings | None = None,
    ) -> None:
        self.directory = directory or default_directory()
        #: ``seri``: events go out as the integration module sends them (``sim.seri``).
        self.dialect = dialect
        self.settings_seri = seri or SeriSettings()
        self.sink: EventSink = sink if sink is not None else MemorySink()
        self.company_param = company_param
        #: What 16's ``ext`` carries: the member's ``extension`` or the number ``dialled``.
        self.ext_reading: ExtReading = ext_reading
        #: The code that ends the ringing legs of group members who did not answer.
        self.group_end = SsnEvent(group_end)
        self._lock = threading.RLock()
        self._calls: dict[str, SimCall] = {}
        self._legs: dict[str, Leg] = {}
        self._next_call = itertools.count(0x000C0001)
        self._next_leg = itertools.count(0x000A0001)
        #: Every CRUDevent received: (action, entity type, subtype, entity id).
        self.crud_events: list[dict[str, str]] = []
        #: Called (outside the lock) with each call a user starts: CallReq, CallReqExt, API.
        self.outgoing_listeners: list[OutgoingListener] = []
        self.logged_in: set[str] = set()
        #: Which legs' events carry the external id of a CallReq: ``caller`` (the leg the
        #: request placed, as the document suggests), ``every_leg`` (an internal callee's
        #: 16 too) or ``none`` (a PBX whose events never echo it).
        self.ext_id_mode: ExtIdMode = "caller"

    # ------------------------------------------------------------------ look-ups

    @property
    def calls(self) -> list[SimCall]:
        """Every call so far, oldest first."""
        with self._lock:
            return list(self._calls.values())

    def leg(self, user_call_id: str) -> Leg:
        """The leg with this user call id, or SimError."""
        try:
            key = normalize_id(user_call_id)
        except InvalidIdentifier as exc:
            raise SimError(f"bad user call id: {exc}") from None
        with self._lock:
            found = self._legs.get(key)
        if found is None:
            raise SimError(f"unknown user call id {key}")
        return found

    def find_call(self, ext_id: str) -> SimCall | None:
        """The most recent call started with external id ``ext_id``."""
        with self._lock:
            return next((c for c in reversed(self._calls.values()) if c.ext_id == ext_id), None)

    def _user(self, extension: str) -> User:
        user = self.directory.user_by_extension(extension)
        if user is None:
            raise SimError(f"unknown extension {extension}")
        return user

    def _device_for(self, user: User, device_id: str | None) -> str | None:
        if device_id:
            try:
                device = self.directory.device(device_id)
            except InvalidIdentifier as exc:
                raise SimError(f"bad device id: {exc}") from None
            if device is None or device.user_id != user.id:
                raise SimError(f"device {device_id} is not a device of {user.extension}")
            return device.wire_id
        devices = self.directory.devices_of(user)
        return devices[0].wire_id if devices else None

    # ------------------------------------------------------------------ emission

    def _emit_call(self, code: SsnEvent, leg: Leg, number: str, ext: str, identity: str) -> None:
        params = {
            "ssn_event": str(int(code)),
            "sender_id": leg.user.wire_id,
            "sender_type": str(int(CallableType.USER)),
            "call_id": leg.user_call_id,
            "ext_id": self._echoed_ext_id(leg),
            "number": number,
            "ext": ext,
            "identity": identity,
            "group": leg.group,
            self.company_param: str(leg.user.company_id),
        }
        if self.dialect == "seri":
            self.sink.emit(seri_event(self, code, leg, number, params["ext_id"]))
            return
        self.sink.emit(params)

    def _echoed_ext_id(self, leg: Leg) -> str:
        """The ``ext_id`` an event of ``leg`` carries under ``ext_id_mode``."""
        if self.ext_id_mode == "none":
            return ""
        if self.ext_id_mode == "every_leg":
            return leg.ext_id or leg.call.ext_id
        return leg.ext_id

    def _ring(self, leg: Leg) -> None:
        """16 or 17 for a new leg."""
        code = (
            SsnEvent.CALL_INCOMING
            if leg.direction is Direction.INCOMING
            else (SsnEvent.CALL_OUTGOING)
        )
        ext = leg.user.extension
        if code is SsnEvent.CALL_INCOMING and self.ext_reading == "dialled" and leg.dialled:
            ext = leg.dialled  # "number called": the group's number or the DID
        self._emit_call(code, leg, leg.remote.number, ext, leg.remote.identity)

    def _callee_caller(self, leg: Leg) -> tuple[str, str]:
        """(callee number, caller number) of a leg, for 18 and 19."""
        if leg.direction is Direction.INCOMING:
            return leg.user.extension, leg.remote.number
        return leg.remote.number, leg.user.extension

    def _end(self, leg: Leg, code: SsnEvent, remote: Party | None = None) -> None:
        """End a leg with 19, 20 or 21; ``remote`` overrides who the other side was."""
        other = remote or leg.remote
        if code is SsnEvent.CALL_REJECTED:
            callee, caller = self._callee_caller(leg)
            self._emit_call(code, leg, callee, caller, other.identity)
        else:
            self._emit_call(code, leg, other.number, leg.user.extension, other.identity)
        leg.state = LegState.ENDED

    # ------------------------------------------------------------------ starting calls

    def _new_call(self, caller: Party, target: str, ext_id: str) -> SimCall:
        call = SimCall(normalize_id(next(self._next_call)), caller, target, ext_id)
        self._calls[call.call_id] = call
        return call

    def _new_leg(
        self,
        call: SimCall,
        user: User,
        direction: Direction,
        remote: Party,
        *,
        ext_id: str = "",
        group: str = "",
        device_id: str | None = None,
    ) -> Leg:
        leg = Leg(
            normalize_id(next(self._next_leg)),
            user,
            direction,
            remote,
            call,
            ext_id=ext_id,
            group=group,
            device_id=device_id or self._device_for(user, None),
        )
        call.legs.append(leg)
        self._legs[leg.user_call_id] = leg
        return leg

    @staticmethod
    def _check_ext_id(ext_id: str | None) -> str:
        if not ext_id:
            return ""
        try:
            return validate_external_id(ext_id)
        except InvalidIdentifier as exc:
            raise SimError(str(exc)) from None

    def _ring_members(
        self, call: SimCall, group: Group, caller: Party, dialled: str | None = None
    ) -> None:
        members = [self._user(ext) for ext in group.members]
        if group.ring_mode is not RingMode.ALL:
            members = members[:1]  # a hunt group: one member at a time, see hunt_next
        for user in members:
            leg = self._new_leg(call, user, Direction.INCOMING, caller, group=group.name)
            leg.dialled = dialled or group.number
            self._ring(leg)

    def hunt_next(self, call: SimCall) -> Leg | None:
        """A hunt group moves on: the ringing member's leg ends, or the next member rings.

        With a member ringing, its leg ends (``group_end``) and nobody rings for now: the gap
        a site leaves between members is the time until the next ``hunt_next``. With nobody
        ringing, the next member who has not rung yet rings (returned); None when every
        member has rung.
        """
        with self._lock:
            call = call.resolved()
            group = self.directory.group_by_number(call.target)
            if group is None:
                group = self.directory.group_by_number(self.directory.dids.get(call.target, ""))
            if group is None or call.answered:
                raise SimError(f"call {call.call_id} is not an unanswered group call")
            ringing = [leg for leg in call.live_legs if leg.direction is Direction.INCOMING]
            if ringing:
                for leg in ringing:
                    self._end(leg, self.group_end)
                return None
            rung = {leg.user.extension for leg in call.legs}
            following = [m for m in group.members if m not in rung]
            if not following:
                return None
            leg = self._new_leg(
                call, self._user(following[0]), Direction.INCOMING, call.caller, group=group.name
            )
            leg.dialled = call.target
            self._ring(leg)
            return leg

    def incoming_call(
        self,
        from_number: str,
        to_extension: str,
        caller_name: str | None = None,
    ) -> SimCall:
        """An external caller dials an extension (16) or a group number (16 per member).

        ``to_extension`` may also be a DID of the directory: the call reaches its target.
        """
        with self._lock:
            caller = Party(from_number.strip(), external_identity(caller_name))
            if not caller.number:
                raise SimError("the caller's number is empty")
            dialled = to_extension.strip()
            target = self.directory.dids.get(dialled, dialled)
            group = self.directory.group_by_number(target)
            user = None if group is not None else self._user(target)
            if group is not None and not group.members:
                raise SimError(f"group {group.name} has no members")
            call = self._new_call(caller, dialled, "")
            if group is not None:
                self._ring_members(call, group, caller, dialled)
            else:
                assert user is not None
                leg = self._new_leg(call, user, Direction.INCOMING, caller)
                leg.dialled = dialled
                self._ring(leg)
            return call

    def ring_group(self, from_number: str, group: str, caller_name: str | None = None) -> SimCall:
        """An external caller reaches a ring group (by number or name): 16 for every member."""
        found = self.directory.group_by_number(group)
        if found is None:
            raise SimError(f"unknown group {group}")
        return self.incoming_call(from_number, found.number, caller_name)

    def outgoing_call(
        self,
        extension: str,
        number: str,
        *,
        ext_id: str | None = None,
        device_id: str | None = None,
        callee_name: str | None = None,
    ) -> SimCall:
        """A user calls ``number`` (what CallReq does): 17 for the user; 16 for an internal callee.

        The remote party rings until ``answer``/``reject``/``hangup`` says otherwise.
        """
        with self._lock:
            user = self._user(extension)
            number = number.strip()
            if not number:
                raise SimError("the number to call is empty")
            checked = self._check_ext_id(ext_id)
            device = self._device_for(user, device_id)
            group = self.directory.group_by_number(number)
            callee = self.directory.user_by_extension(number)
            if callee is not None and callee.id == user.id:
                raise SimError("a user cannot call their own extension")
            if group is not None and not group.members:
                raise SimError(f"group {group.name} has no members")
            call = self._new_call(Party.of_user(user), number, checked)
            if group is not None:
                remote = Party(group.number, f"{group.name}|||0|0")
            elif callee is not None:
                remote = Party.of_user(callee)
            else:
                remote = Party(number, external_identity(callee_name))
            leg = self._new_leg(
                call, user, Direction.OUTGOING, remote, ext_id=checked, device_id=device
            )
            self._ring(leg)
            if group is not None:
                self._ring_members(call, group, Party.of_user(user))
            elif callee is not None:
                self._ring(self._new_leg(call, callee, Direction.INCOMING, Party.of_user(user)))
            listeners = list(self.outgoing_listeners)
        for listener in listeners:
            listener(call)
        return call

    def internal_call(self, from_extension: str, to_extension: str) -> SimCall:
        """One user calls another (or a group): 17 for the caller, 16 for the callee(s)."""
        return self.outgoing_call(from_extension, to_extension)

    # ------------------------------------------------------------------ choosing a leg

    def _pick_leg(
        self, call: SimCall, extension: str | None, states: tuple[LegState, ...], what: str
    ) -> Leg:
        call = call.resolved()
        candidates = [leg for leg in call.legs if leg.state in states]
        if extension is not None:
            candidates = [leg for leg in candidates if leg.user.extension == extension]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            who = f" for {extension}" if extension else ""
            raise SimError(f"call {call.call_id} has no leg{who} that can {what}")
        # Prefer the callee side (incoming legs): "answer the call" means the one ringing.
        incoming = [leg for leg in candidates if leg.direction is Direction.INCOMING]
        if len(incoming) == 1:
            return incoming[0]
        raise SimError(f"call {call.call_id}: several legs can {what}; name the extension")

    # ------------------------------------------------------------------ answering and ending

    def answer(self, call: SimCall, extension: str | None = None) -> Leg:
        """The callee answers (18). For a call to an external number: the remote party answers.

        With a group, the other members' ringing legs end (20). Returns the answering leg
        (the user's own leg when the remote party answered).
        """
        with self._lock:
            call = call.resolved()
            if call.answered:
                raise SimError(f"call {call.call_id} is already answered")
            ringing_in = [leg for leg in call.live_legs if leg.direction is Direction.INCOMING]
            caller_leg = call.caller_leg
            if not ringing_in:
                if caller_leg is None or not caller_leg.live:
                    raise SimError(f"call {call.call_id} is not ringing")
                if extension not in (None, caller_leg.user.extension):
                    raise SimError(f"extension {extension} is not on call {call.call_id}")
                self._set_answered(call, caller_leg)
                return caller_leg
            leg = self._pick_leg(call, extension, (LegState.RINGING,), "answer")
            if leg.direction is not Direction.INCOMING:
                raise SimError("the caller cannot answer their own call")
            for other in ringing_in:
                if other is not leg:
                    self._end(other, self.group_end if other.group else SsnEvent.CALL_REMOTE_HANGUP)
            self._set_answered(call, leg)
            if caller_leg is not None and caller_leg.live:
                caller_leg.remote = Party.of_user(leg.user)
                self._set_answered(call, caller_leg)
            return leg

    def _set_answered(self, call: SimCall, leg: Leg) -> None:
        call.answered = True
        leg.answered = True
        leg.state = LegState.ACTIVE
        callee, caller = self._callee_caller(leg)
        self._emit_call(SsnEvent.CALL_ANSWERED, leg, callee, caller, leg.remote.identity)

    def reject(self, call: SimCall, extension: str | None = None) -> None:
        """The callee rejects the ringing call (19); for an external callee, the remote does."""
        with self._lock:
            call = call.resolved()
            if call.answered:
                raise SimError(f"call {call.call_id} is answered; hang up instead")
            ringing_in = [leg for leg in call.live_legs if leg.direction is Direction.INCOMING]
            caller_leg = call.caller_leg
            if not ringing_in:
                if caller_leg is None or not caller_leg.live:
                    raise SimError(f"call {call.call_id} is not ringing")
                self._end(caller_leg, SsnEvent.CALL_REJECTED)
                return
            leg = self._pick_leg(call, extension, (LegState.RINGING,), "reject")
            self._end(leg, SsnEvent.CALL_REJECTED)
            if (
                caller_leg is not None
                and caller_leg.live
                and not any(other.live for other in ringing_in if other is not leg)
            ):
                self._end(caller_leg, SsnEvent.CALL_REJECTED, remote=Party.of_user(leg.user))

    def hangup(self, call: SimCall, by: HangupSide = "local", extension: str | None = None) -> None:
        """End the call. ``by`` is relative to the leg of ``extension`` (default: the only
        user on the call, else the answering one, else the caller).

        ``local``: that user hangs up (21), an internal peer gets 20. ``remote``: the other
        party hangs up, the user gets 20. On a ringing call, the callee hanging up is a
        rejection (19), and the caller hanging up leaves the ringing legs missed (20).
        """
        if by not in ("local", "remote"):
            raise SimError(f"by must be 'local' or 'remote', got {by!r}")
        with self._lock:
            call = call.resolved()
            live = call.live_legs
            if not live:
                raise SimError(f"call {call.call_id} has already ended")
            leg = self._reference_leg(call, extension)
            if by == "local":
                self._hang_up_from(call, leg.user, leg)
            elif leg.remote.user is not None and call.legs_of(leg.remote.user.extension):
                peer = next((p for p in call.live_legs if p.user.id == leg.remote.user.id), None)
                if peer is None:  # the internal peer has no live leg: nobody left to hang up
                    self._end(leg, SsnEvent.CALL_REMOTE_HANGUP)
                else:
                    self._hang_up_from(call, peer.user, peer)
            elif not call.answered and leg.direction is Direction.OUTGOING:
                # The external callee refuses while it rings: a rejection for the user.
                self._end(leg, SsnEvent.CALL_REJECTED)
            else:
                for other in call.live_legs:
                    ringing_member = other.group and other.state is LegState.RINGING
                    code = self.group_end if ringing_member else SsnEvent.CALL_REMOTE_HANGUP
                    self._end(other, code)

    def _reference_leg(self, call: SimCall, extension: str | None) -> Leg:
        live = call.live_legs
        if extension is not None:
            mine = [leg for leg in live if leg.user.extension == extension]
            if not mine:
                raise SimError(f"extension {extension} has no live leg on call {call.call_id}")
            return mine[-1]
        if len(live) == 1:
            return live[0]
        answered = [leg for leg in live if leg.answered and leg.direction is Direction.INCOMING]
        if answered:
            return answered[0]
        caller_leg = call.caller_leg
        if caller_leg is not None and caller_leg.live:
            return caller_leg
        return live[0]

    def _hang_up_from(self, call: SimCall, user: User, leg: Leg) -> None:
        """``user`` (on ``leg``) closes the call: 21 for them, 20 for every other live leg."""
        if not leg.answered and leg.direction is Direction.INCOMING:
            self.reject(call, user.extension)
            return
        self._end(leg, SsnEvent.CALL_LOCAL_HANGUP)
        for other in call.live_legs:
            self._end(other, SsnEvent.CALL_REMOTE_HANGUP, remote=Party.of_user(user))

    # ------------------------------------------------------------------ leg commands

    def hold(self, call: SimCall, extension: str | None = None) -> Leg:
        """Put the user's active leg on hold (state only: the document has no event)."""
        with self._lock:
            leg = self._pick_leg(call, extension, (LegState.ACTIVE,), "be held")
            leg.state = LegState.HELD
            return leg

    def retrieve(self, call: SimCall, extension: str | None = None) -> Leg:
        """Take the user's held leg back (state only)."""
        with self._lock:
            leg = self._pick_leg(call, extension, (LegState.HELD,), "be retrieved")
            leg.state = LegState.ACTIVE
            return leg

    def set_leg_state(self, leg: Leg, state: LegState) -> None:
        """Hold or retrieve one specific leg (what CallHold/CallRetrieve do)."""
        with self._lock:
            wanted_from = LegState.ACTIVE if state is LegState.HELD else LegState.HELD
            if leg.state is not wanted_from:
                raise SimError(f"call {leg.user_call_id} is {leg.state}, not {wanted_from}")
            leg.state = state

    def accept(self, leg: Leg) -> Leg:
        """CallAccept: answer this ringing incoming leg."""
        if leg.direction is not Direction.INCOMING or leg.state is not LegState.RINGING:
            raise SimError(f"call {leg.user_call_id} is not an incoming call that rings")
        return self.answer(leg.call, leg.user.extension)

    def disconnect(self, leg: Leg) -> None:
        """CallDisconnect: this leg's user hangs up (a ringing incoming leg is rejected)."""
        with self._lock:
            if not leg.live:
                raise SimError(f"call {leg.user_call_id} has already ended")
            self._hang_up_from(leg.call.resolved(), leg.user, leg)

    def divert(self, leg: Leg, to_extension: str) -> Leg:
        """Send a ringing incoming leg to another extension: 21 for it, 16 for the new leg."""
        with self._lock:
            if leg.direction is not Direction.INCOMING or leg.state is not LegState.RINGING:
                raise SimError(
                    f"call {leg.user_call_id} is not ringing; only a ringing call can be "
                    "diverted (use CallTransfer)"
                )
            target = self._user(to_extension)
            if any(o.live and o.user.id == target.id for o in leg.call.legs):
                raise SimError(f"extension {to_extension} is already on this call")
            call = leg.call.resolved()
            self._end(leg, SsnEvent.CALL_LOCAL_HANGUP)
            new = self._new_leg(
                call, target, Direction.INCOMING, leg.remote, ext_id=leg.ext_id, group=leg.group
            )
            self._ring(new)
            return new

    def transfer(self, leg_from: Leg, leg_to: Leg) -> SimCall:
        """Join the other parties of two answered legs of one user; that user's legs end (21).

        The remaining parties now talk to each other: an internal user's leg keeps its user
        call id and sees the new remote party (events that follow carry its number).
        """
        with self._lock:
            if leg_from.user.id != leg_to.user.id:
                raise SimError("both calls of a transfer must belong to the same user")
            if leg_from is leg_to or leg_from.call.resolved() is leg_to.call.resolved():
                raise SimError("a transfer needs two different calls")
            for leg in (leg_from, leg_to):
                if leg.state not in (LegState.ACTIVE, LegState.HELD):
                    raise SimError(f"call {leg.user_call_id} is {leg.state}, not answered")
            first, second = leg_from.call.resolved(), leg_to.call.resolved()
            x_party, y_party = leg_from.remote, leg_to.remote
            self._end(leg_from, SsnEvent.CALL_LOCAL_HANGUP)
            self._end(leg_to, SsnEvent.CALL_LOCAL_HANGUP)
            for leg in first.live_legs:
                if leg.remote.user is not None and leg.remote.user.id == leg_from.user.id:
                    leg.remote = y_party
            for leg in second.live_legs:
                if leg.remote.user is not None and leg.remote.user.id == leg_to.user.id:
                    leg.remote = x_party
                leg.call = first
                first.legs.append(leg)
            second.legs = [leg for leg in second.legs if leg.call is second]
            second.merged_into = first
            return first

    def pick(self, extension: str, target: str, device_id: str | None = None) -> Leg:
        """CallPick: ``extension`` takes a call ringing at ``target`` (an extension or group).

        The ringing legs end (20); the picker gets 16 then 18 on a new leg.
        """
        with self._lock:
            picker = self._user(extension)
            device = self._device_for(picker, device_id)
            group = self.directory.group_by_number(target)
            wanted = target.strip()
            for call in reversed(list(self._calls.values())):
                ringing = [
                    leg
                    for leg in call.live_legs
                    if leg.direction is Direction.INCOMING
                    and leg.state is LegState.RINGING
                    and (
                        leg.user.extension == wanted
                        or (group is not None and leg.group == group.name)
                    )
                ]
                if ringing and call.merged_into is None:
                    break
            else:
                raise SimError(f"no call rings at {target}")
            if any(leg.user.id == picker.id for leg in ringing):
                raise SimError("use CallAccept to answer a call that rings at your own phone")
            first = ringing[0]
            new = self._new_leg(
                call,
                picker,
                Direction.INCOMING,
                first.remote,
                ext_id=first.ext_id,
                group=first.group,
                device_id=device,
            )
            self._ring(new)
            self.answer(call, extension)
            return new

    def switch_device(self, leg: Leg, device_id: str) -> Leg:
        """CallDeviceSwitch: move the leg to another device of the same user (state only)."""
        with self._lock:
            if not leg.live:
                raise SimError(f"call {leg.user_call_id} has already ended")
            leg.device_id = self._device_for(leg.user, device_id)
            return leg

    def record(self, leg: Leg, on: bool) -> Leg:
        """CallRecStart/CallRecStop: flip the recording flag of an answered leg."""
        with self._lock:
            if leg.state not in (LegState.ACTIVE, LegState.HELD):
                raise SimError(f"call {leg.user_call_id} is {leg.state}; record an answered call")
            leg.recording = on
            return leg

    # ------------------------------------------------------------------ devices

    def _device_event(self, code: SsnEvent, device: Device) -> None:
        user = self.directory.user_by_id(device.user_id)
        assert user is not None  # the directory validates device owners
        if self.dialect == "seri":
            return  # the integration module reports no devices
        self.sink.emit(
            {
                "ssn_event": str(int(code)),
                "device_id": device.wire_id,
                "device_type": str(int(device.type)),
                "device_host": device.host,
                "device_name": device.user_agent,
                "number": user.extension,
                "user_id": user.wire_id,
                self.company_param: str(user.company_id),
            }
        )

    def _known_device(self, device_id: str) -> Device:
        try:
            device = self.directory.device(device_id)
        except InvalidIdentifier as exc:
            raise SimError(f"bad device id: {exc}") from None
        if device is None:
            raise SimError(f"unknown device {device_id}")
        return device

    def device_login(self, device_id: str) -> Device:
        """A device logs in (1)."""
        with self._lock:
            device = self._known_device(device_id)
            self.logged_in.add(device.wire_id)
            self._device_event(SsnEvent.DEVICE_LOGIN, device)
            return device

    def device_logout(self, device_id: str) -> Device:
        """A device logs out (2)."""
        with self._lock:
            device = self._known_device(device_id)
            self.logged_in.discard(device.wire_id)
            self._device_event(SsnEvent.DEVICE_LOGOUT, device)
            return device

    def login_all(self) -> None:
        """Log every device in (1 each), as a PBX does when phones register at start."""
        for device in self.directory.devices:
            self.device_login(device.wire_id)

    # ------------------------------------------------------------------ misc

    def record_crud(self, fields: dict[str, str]) -> None:
        """CRUDevent: accepted and kept (the simulator has no configuration to act upon)."""
        with self._lock:
            self.crud_events.append(dict(fields))

    def live_calls(self) -> Iterator[SimCall]:
        """Calls with at least one live leg."""
        with self._lock:
            return iter([c for c in self._calls.values() if c.merged_into is None and not c.ended])
