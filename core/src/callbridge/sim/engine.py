"""The call engine of the simulated PBX: calls, user legs, and the events they emit.

A *call* (``SimCall``, with its own call id) has one *leg* per PBX user involved (``SimLeg``, with
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

from collections.abc import Iterator

from ..voispeed.codes import (
    Direction,
    SsnEvent,
)
from ..voispeed.ids import InvalidIdentifier
from .calls import (
    EXT_ID_MODES,
    ExtIdMode,
    ExtReading,
    GroupEnd,
    HangupSide,
    LegState,
    OutgoingListener,
    Party,
    SimCall,
    SimError,
    SimLeg,
    external_identity,
)
from .engine_base import EngineBase
from .model import Device, User

__all__ = [
    "EXT_ID_MODES",
    "CallEngine",
    "ExtIdMode",
    "ExtReading",
    "GroupEnd",
    "HangupSide",
    "LegState",
    "OutgoingListener",
    "Party",
    "SimCall",
    "SimError",
    "SimLeg",
    "external_identity",
]


class CallEngine(EngineBase):
    """The simulated PBX's calls. Every method is synchronous and emits before returning."""

    # ------------------------------------------------------------------ answering and ending

    def answer(self, call: SimCall, extension: str | None = None) -> SimLeg:
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

    def _set_answered(self, call: SimCall, leg: SimLeg) -> None:
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

    def _reference_leg(self, call: SimCall, extension: str | None) -> SimLeg:
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

    def _hang_up_from(self, call: SimCall, user: User, leg: SimLeg) -> None:
        """``user`` (on ``leg``) closes the call: 21 for them, 20 for every other live leg."""
        if not leg.answered and leg.direction is Direction.INCOMING:
            self.reject(call, user.extension)
            return
        self._end(leg, SsnEvent.CALL_LOCAL_HANGUP)
        for other in call.live_legs:
            self._end(other, SsnEvent.CALL_REMOTE_HANGUP, remote=Party.of_user(user))

    # ------------------------------------------------------------------ leg commands

    def hold(self, call: SimCall, extension: str | None = None) -> SimLeg:
        """Put the user's active leg on hold (state only: the document has no event)."""
        with self._lock:
            leg = self._pick_leg(call, extension, (LegState.ACTIVE,), "be held")
            leg.state = LegState.HELD
            return leg

    def retrieve(self, call: SimCall, extension: str | None = None) -> SimLeg:
        """Take the user's held leg back (state only)."""
        with self._lock:
            leg = self._pick_leg(call, extension, (LegState.HELD,), "be retrieved")
            leg.state = LegState.ACTIVE
            return leg

    def set_leg_state(self, leg: SimLeg, state: LegState) -> None:
        """Hold or retrieve one specific leg (what CallHold/CallRetrieve do)."""
        with self._lock:
            wanted_from = LegState.ACTIVE if state is LegState.HELD else LegState.HELD
            if leg.state is not wanted_from:
                raise SimError(f"call {leg.user_call_id} is {leg.state}, not {wanted_from}")
            leg.state = state

    def accept(self, leg: SimLeg) -> SimLeg:
        """CallAccept: answer this ringing incoming leg."""
        if leg.direction is not Direction.INCOMING or leg.state is not LegState.RINGING:
            raise SimError(f"call {leg.user_call_id} is not an incoming call that rings")
        return self.answer(leg.call, leg.user.extension)

    def disconnect(self, leg: SimLeg) -> None:
        """CallDisconnect: this leg's user hangs up (a ringing incoming leg is rejected)."""
        with self._lock:
            if not leg.live:
                raise SimError(f"call {leg.user_call_id} has already ended")
            self._hang_up_from(leg.call.resolved(), leg.user, leg)

    def divert(self, leg: SimLeg, to_extension: str) -> SimLeg:
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

    def transfer(self, leg_from: SimLeg, leg_to: SimLeg) -> SimCall:
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

    def pick(self, extension: str, target: str, device_id: str | None = None) -> SimLeg:
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

    def switch_device(self, leg: SimLeg, device_id: str) -> SimLeg:
        """CallDeviceSwitch: move the leg to another device of the same user (state only)."""
        with self._lock:
            if not leg.live:
                raise SimError(f"call {leg.user_call_id} has already ended")
            leg.device_id = self._device_for(leg.user, device_id)
            return leg

    def record(self, leg: SimLeg, on: bool) -> SimLeg:
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
