"""The simulated PBX's call model: calls, user legs, parties, and the states of a leg.

Plain data the engine (``engine``) changes under its lock; apart from it so that the model
reads on its own. See ``engine``'s docstring for what a call, a leg and a party are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from ..voispeed.codes import (
    CallStatus,
    Direction,
    UserCallStatus,
)
from .model import User

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
class SimLeg:
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
            f"SimLeg({self.user_call_id} {self.user.extension} {self.direction.name} "
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
    legs: list[SimLeg] = field(default_factory=list)
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
    def live_legs(self) -> list[SimLeg]:
        """Legs not ended yet."""
        return [leg for leg in self.legs if leg.live]

    @property
    def caller_leg(self) -> SimLeg | None:
        """The leg of an internal caller (direction outgoing), if any."""
        return next((leg for leg in self.legs if leg.direction is Direction.OUTGOING), None)

    def legs_of(self, extension: str) -> list[SimLeg]:
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
