"""The first half of the simulated PBX's call engine: finding, emitting and placing calls.

Split from ``engine`` (``CallEngine``) by size; see that module's docstring for the events
each change emits and the readings a real PBX may follow.
"""

from __future__ import annotations

import itertools
import threading
from typing import Literal

from ..settings import SeriSettings
from ..voispeed.codes import (
    CallableType,
    Direction,
    RingMode,
    SsnEvent,
)
from ..voispeed.ids import InvalidIdentifier, normalize_id, validate_external_id
from .calls import (
    ExtIdMode,
    ExtReading,
    GroupEnd,
    LegState,
    OutgoingListener,
    Party,
    SimCall,
    SimError,
    SimLeg,
    external_identity,
)
from .emitter import EventSink, MemorySink
from .model import Directory, Group, User, default_directory
from .seri import seri_event


class EngineBase:
    """Look-ups, emission and placing calls: what every later state change builds on.

    ``CallEngine`` (in ``engine``) adds answering, ending, the leg commands and devices.
    """

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
        self._legs: dict[str, SimLeg] = {}
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

    def leg(self, user_call_id: str) -> SimLeg:
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

    def _emit_call(self, code: SsnEvent, leg: SimLeg, number: str, ext: str, identity: str) -> None:
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

    def _echoed_ext_id(self, leg: SimLeg) -> str:
        """The ``ext_id`` an event of ``leg`` carries under ``ext_id_mode``."""
        if self.ext_id_mode == "none":
            return ""
        if self.ext_id_mode == "every_leg":
            return leg.ext_id or leg.call.ext_id
        return leg.ext_id

    def _ring(self, leg: SimLeg) -> None:
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

    def _callee_caller(self, leg: SimLeg) -> tuple[str, str]:
        """(callee number, caller number) of a leg, for 18 and 19."""
        if leg.direction is Direction.INCOMING:
            return leg.user.extension, leg.remote.number
        return leg.remote.number, leg.user.extension

    def _end(self, leg: SimLeg, code: SsnEvent, remote: Party | None = None) -> None:
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
    ) -> SimLeg:
        leg = SimLeg(
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

    def hunt_next(self, call: SimCall) -> SimLeg | None:
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
    ) -> SimLeg:
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
