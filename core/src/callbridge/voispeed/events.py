"""Typed PBX events, and the one function that turns callback parameters into them.

The PBX calls our URL with ``ssn_event`` and the parameters the document lists for that
event. ``parse_event`` is the only way in: it returns one of the models below or raises
``EventParseError`` naming the field and the reason. It never raises anything else, whatever
the input (a property-based test holds it to that).

The document gives ``number`` and ``ext`` different meanings per event. Rather than have every
reader remember the table, each call event says which side is which:

=====  ======================  ======================  ================================
event  ``number``              ``ext``                 remote party / local user
=====  ======================  ======================  ================================
16     calling number          number called           number / ext
17     recipient               calling number (user)   number / ext
18     who answers (callee)    calling number          callee/caller: depends on direction
19     who rejects (callee)    calling number          callee/caller: depends on direction
20     who hangs up (remote)   who receives it (user)  number / ext
21     who receives it         who hangs up (user)     number / ext
=====  ======================  ======================  ================================

For 18 and 19 the event alone cannot say which side is remote: on an incoming call the callee
is our user, on an outgoing one it is the remote party. ``remote_number_for(direction)`` takes
the direction the call started with (16 or 17), which the call tracker knows.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from .codes import CallableType, DeviceType, Direction, SsnEvent
from .ids import InvalidIdentifier, normalize_id

#: Longest value accepted for any one parameter (identity strings are the longest legitimate).
MAX_VALUE_LENGTH = 1024
#: Longest company id accepted: it goes into every call key, and from there into CRM fields
#: of bounded length (Salesforce's CallObject holds 255 characters).
MAX_COMPANY_LENGTH = 64
#: Most parameters accepted in one event (the document lists at most 9 per event).
MAX_PARAMETERS = 64
#: Parameters that authenticate the request and must never be stored or hashed.
SECRET_PARAMETERS = frozenset({"token"})
#: The document says each event names the company but not the parameter; this is our default.
DEFAULT_COMPANY_PARAMETER = "company_id"
#: Not the document's: set to ``1`` by a source that *inferred* a 19 from a user call that
#: closed without ever being active (``callbridge.mysql``). The monitor tables cannot tell the
#: user rejecting from the caller giving up or the ring timing out, so such a 19 says only
#: "not answered"; the call tracker logs it as missed, with nobody known to have hung up.
UNANSWERED_CLOSE = "cb_unanswered_close"
#: Not the document's: set to ``1`` by a source that *inferred* a 20/21 from a user call that
#: closed after being active (``callbridge.mysql``): the tables do not say who hung up, so the
#: call tracker records nobody known (``hung_up_by: unknown``) rather than guessing.
HANGUP_UNKNOWN = "cb_hangup_unknown"
#: Not the document's: the extension of the event's user (``sender_id``) in the PBX's ``users``
#: table, filled in by the MySQL source. Event 16's ``ext`` is the number *called* (a group,
#: a DID), so the call tracker takes the user's extension from here first.
USER_EXTENSION = "user_extension"
#: Not the document's: ``1`` when the PBX's tables say the call is recorded (``recording`` of
#: ``monitor_user_calls`` or ``monitor_calls``), set by the MySQL source's triggers. The
#: call's activity then carries a recording reference (``CALLBRIDGE_RECORDINGS__*``).
RECORDING = "cb_recording"


class EventParseError(ValueError):
    """A callback whose parameters do not make an event: names the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Identity(BaseModel):
    """The ``identity`` parameter: ``Name|Surname|Department|p1|p2``.

    p1 and p2 are Polyedro components, ``0`` outside that product. Missing trailing parts are
    empty strings, so a short identity from an older PBX still parses.
    """

    model_config = ConfigDict(frozen=True)

    name: str = ""
    surname: str = ""
    department: str = ""
    p1: str = ""
    p2: str = ""

    @classmethod
    def parse(cls, raw: str) -> Identity:
        """Split the raw identity on ``|``; parts beyond the fifth are joined into p2."""
        parts = [part.strip() for part in raw.split("|")]
        if len(parts) > 5:
            parts = [*parts[:4], "|".join(parts[4:])]
        parts += [""] * (5 - len(parts))
        return cls(name=parts[0], surname=parts[1], department=parts[2], p1=parts[3], p2=parts[4])

    @property
    def display_name(self) -> str:
        """``Name Surname``, or whichever of the two is present."""
        return " ".join(p for p in (self.name, self.surname) if p)


class BaseEvent(BaseModel):
    """What every event has: its code, the company, and every parameter as received."""

    model_config = ConfigDict(frozen=True)

    ssn_event: int
    company_id: str | None = None
    #: The company (tenant) the ingress token named; None for an event that came without one
    #: (the MySQL source), whose company the engine finds by ``company_id``.
    company: str | None = None
    #: Every parameter as received (minus secrets), including ones the document does not list.
    params: dict[str, str] = Field(default_factory=dict, repr=False)

    @property
    def dedup_key(self) -> str:
        """Same event, same values -> same key. Used by the journal to drop repeats.

        A named company other than ``default`` is part of the key: two PBXes may send the
        same parameters for their own company 1, and neither is the other's repeat.
        """
        digest = hashlib.sha256()
        if self.company not in (None, "default"):
            digest.update(f"company={self.company}".encode())
            digest.update(b"\x02")
        for key in sorted(self.params):
            digest.update(key.encode())
            digest.update(b"\x00")
            digest.update(self.params[key].encode())
            digest.update(b"\x01")
        return digest.hexdigest()[:32]

    @property
    def kind(self) -> SsnEvent | None:
        """The named event code, or None for an event the document does not list."""
        try:
            return SsnEvent(self.ssn_event)
        except ValueError:
            return None


class DeviceEvent(BaseEvent):
    """ssn_event 1 and 2: a device of a user logged in or out."""

    device_id: str
    #: None when absent or not a type the document lists (the raw value stays in ``params``).
    device_type: DeviceType | None = None
    #: ``device_host`` as received; ``device_ip``/``device_port`` are what could be read of it
    #: (the whole value and None when it is not ``address:port``).
    device_host: str | None = None
    device_ip: str | None = None
    device_port: int | None = None
    device_name: str | None = None
    #: The extension of the user on whom the device logged in or out.
    number: str | None = None
    user_id: str | None = None


class DeviceLogin(DeviceEvent):
    """ssn_event 1: a user device has logged in."""

    ssn_event: Literal[1] = 1


class DeviceLogout(DeviceEvent):
    """ssn_event 2: a user device has logged out."""

    ssn_event: Literal[2] = 2


class CallEvent(BaseEvent):
    """ssn_event 16-21: something happened to one user's leg of a call (a *user* call id)."""

    #: Whether ``number`` is the remote party in this event regardless of direction.
    _number_is_remote: ClassVar[bool | None] = True

    #: The user the event is about (type 0 = user, the only type the document allows here).
    sender_id: str | None = None
    #: None when absent or not a type the document lists (the raw value stays in ``params``).
    sender_type: CallableType | None = None
    #: The *user* call id (monitor_user_calls.usercallid), the id SOAP commands take.
    call_id: str
    #: The external id given in CallReq/CallReqExt, echoed by the PBX; None when absent.
    ext_id: str | None = None
    number: str = ""
    ext: str = ""
    identity: Identity | None = None
    identity_raw: str | None = None
    group: str | None = None

    @property
    def remote_number(self) -> str:
        """The remote party's number, for events where the document fixes it (16, 17, 20, 21)."""
        if self._number_is_remote is None:
            raise TypeError(
                f"ssn_event {self.ssn_event}: the remote side depends on the call's direction; "
                "use remote_number_for(direction)"
            )
        return self.number if self._number_is_remote else self.ext

    @property
    def local_number(self) -> str:
        """The local user's number (extension), where the document fixes it."""
        if self._number_is_remote is None:
            raise TypeError(
                f"ssn_event {self.ssn_event}: the local side depends on the call's direction; "
                "use local_number_for(direction)"
            )
        return self.ext if self._number_is_remote else self.number

    def remote_number_for(self, direction: Direction) -> str:
        """The remote party's number, given the direction the call started with."""
        if self._number_is_remote is not None:
            return self.remote_number
        return self.ext if direction is Direction.INCOMING else self.number

    def local_number_for(self, direction: Direction) -> str:
        """The local user's number, given the direction the call started with."""
        if self._number_is_remote is not None:
            return self.local_number
        return self.number if direction is Direction.INCOMING else self.ext


class CallIncoming(CallEvent):
    """ssn_event 16: a call arrives for the user. number = caller, ext = number called."""

    ssn_event: Literal[16] = 16

    @property
    def direction(self) -> Direction:
        """Incoming."""
        return Direction.INCOMING


class CallOutgoing(CallEvent):
    """ssn_event 17: the user calls out. number = recipient, ext = the user (caller)."""

    ssn_event: Literal[17] = 17

    @property
    def direction(self) -> Direction:
        """Outgoing."""
        return Direction.OUTGOING


class CallAnswered(CallEvent):
    """ssn_event 18: the callee answered. number = callee, ext = caller."""

    ssn_event: Literal[18] = 18
    _number_is_remote: ClassVar[bool | None] = None

    @property
    def callee_number(self) -> str:
        """Who answered."""
        return self.number

    @property
    def caller_number(self) -> str:
        """Who called."""
        return self.ext


class CallRejected(CallEvent):
    """ssn_event 19: the callee rejected. number = callee, ext = caller."""

    ssn_event: Literal[19] = 19
    _number_is_remote: ClassVar[bool | None] = None

    @property
    def rejection_known(self) -> bool:
        """False for a 19 a source inferred from the tables (see ``UNANSWERED_CLOSE``)."""
        return self.params.get(UNANSWERED_CLOSE) != "1"

    @property
    def callee_number(self) -> str:
        """Who rejected."""
        return self.number

    @property
    def caller_number(self) -> str:
        """Who called."""
        return self.ext


class CallRemoteHangup(CallEvent):
    """ssn_event 20: the remote party hung up. number = remote (sender), ext = the user."""

    ssn_event: Literal[20] = 20


class CallLocalHangup(CallEvent):
    """ssn_event 21: the user hung up. number = remote (receiver), ext = the user (sender)."""

    ssn_event: Literal[21] = 21


class UnknownEvent(BaseEvent):
    """An ssn_event the document does not list: accepted and kept whole, never dropped."""


AnyEvent = (
    DeviceLogin
    | DeviceLogout
    | CallIncoming
    | CallOutgoing
    | CallAnswered
    | CallRejected
    | CallRemoteHangup
    | CallLocalHangup
    | UnknownEvent
)
"""Any event ``parse_event`` can return."""
PbxEvent = AnyEvent

# Typed as unions of the concrete classes (not type[CallEvent]) so mypy sees ssn_event's default.
_CallModel = (
    type[CallIncoming]
    | type[CallOutgoing]
    | type[CallAnswered]
    | type[CallRejected]
    | type[CallRemoteHangup]
    | type[CallLocalHangup]
)
_CALL_EVENTS: dict[int, _CallModel] = {
    16: CallIncoming,
    17: CallOutgoing,
    18: CallAnswered,
    19: CallRejected,
    20: CallRemoteHangup,
    21: CallLocalHangup,
}
_DEVICE_EVENTS: dict[int, type[DeviceLogin] | type[DeviceLogout]] = {
    1: DeviceLogin,
    2: DeviceLogout,
}


def _has_surrogates(text: str) -> bool:
    """True for text UTF-8 cannot encode: it would break hashing and JSON later."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _collect(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Turn a mapping or a list of pairs into a dict, refusing conflicting repeats."""
    pairs: Iterable[tuple[str, str]] = params.items() if isinstance(params, Mapping) else params
    result: dict[str, str] = {}
    for key, value in pairs:
        if not isinstance(key, str) or not isinstance(value, str):
            raise EventParseError(str(key)[:40], "parameter names and values must be text")
        if len(result) >= MAX_PARAMETERS and key not in result:
            raise EventParseError("*", f"more than {MAX_PARAMETERS} parameters")
        if len(key) > 64 or not key:
            raise EventParseError(key[:40] or "(empty)", "parameter name is empty or too long")
        if len(value) > MAX_VALUE_LENGTH:
            raise EventParseError(key, f"value longer than {MAX_VALUE_LENGTH} characters")
        if "\x00" in value or "\x00" in key:
            raise EventParseError(key.replace("\x00", "?"), "contains a NUL character")
        if not (key + value).isascii() and _has_surrogates(key + value):
            name = key.encode("utf-8", "replace").decode()
            raise EventParseError(name, "is not valid Unicode text (lone surrogates)")
        if key in result and result[key] != value:
            raise EventParseError(key, "repeated with different values")
        result[key] = value
    return result


_INTEGER = re.compile(r"-?[0-9]+")
_E = TypeVar("_E", bound=IntEnum)


def _int(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name, "").strip()
    if raw == "":
        return None
    # A regex, not str.isdigit(): that accepts "²" (and lstrip("-") accepts "--5"),
    # which int() then refuses with a bare ValueError.
    if not _INTEGER.fullmatch(raw) or len(raw) > 10:
        raise EventParseError(name, f"expected an integer, got {raw!r:.40}")
    return int(raw)


def _id(params: Mapping[str, str], name: str, *, required: bool) -> str | None:
    raw = params.get(name, "").strip()
    if raw == "":
        if required:
            raise EventParseError(name, "missing")
        return None
    try:
        return normalize_id(raw)
    except InvalidIdentifier as exc:
        raise EventParseError(name, str(exc)) from None


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _host(raw: str | None) -> tuple[str | None, int | None]:
    """Split ``address_ip:port``; tolerate a bare address, ``[v6]:port`` and anything else.

    No hook needs the port, so a value that is not ``address:port`` never refuses the event:
    a port number out of range gives the address alone, anything else the whole value.
    """
    if not raw:
        return None, None
    host, sep, port = raw.rpartition(":")
    if not sep or (host.count(":") and not host.startswith("[")):
        return raw, None  # bare host, or an IPv6 address without a port
    if not (port.isascii() and port.isdigit()):
        return raw, None  # not address:port (a SIP URI, a name): kept whole
    if not 0 < int(port) < 65536:
        return host.strip("[]"), None
    return host.strip("[]"), int(port)


def _enum(params: Mapping[str, str], name: str, kind: type[_E]) -> _E | None:
    """The named value of a code parameter, or None when absent or not one we know.

    Never refuses: the document's lists of device and callable types are a guess at what a
    PBX sends, and no hook needs them. The raw value stays in the event's ``params``.
    """
    raw = params.get(name, "").strip()
    if not (_INTEGER.fullmatch(raw) and len(raw) <= 10):
        return None
    try:
        return kind(int(raw))
    except ValueError:
        return None


def parse_event(
    params: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    company_param: str = DEFAULT_COMPANY_PARAMETER,
    company: str | None = None,
) -> AnyEvent:
    """Build the typed event for one callback's parameters (of ``company``, when known).

    Raises EventParseError (and nothing else) when a required parameter is missing or a value
    is malformed. Unknown ``ssn_event`` values give an UnknownEvent; parameters the document
    does not list are kept in ``params``. Secret parameters (the ingress token) are dropped.
    """
    raw = _collect(params)
    kept = {k: v for k, v in raw.items() if k not in SECRET_PARAMETERS}
    code = _int(kept, "ssn_event")
    if code is None:
        raise EventParseError("ssn_event", "missing")
    company_id = _text(kept, company_param)
    if company_id is not None and len(company_id) > MAX_COMPANY_LENGTH:
        raise EventParseError(company_param, f"longer than {MAX_COMPANY_LENGTH} characters")
    if code in _DEVICE_EVENTS:
        host = _text(kept, "device_host")
        ip, port = _host(host)
        return _DEVICE_EVENTS[code](
            company_id=company_id,
            company=company,
            params=kept,
            device_id=_id(kept, "device_id", required=True),
            device_type=_enum(kept, "device_type", DeviceType),
            device_host=host,
            device_ip=ip,
            device_port=port,
            device_name=_text(kept, "device_name"),
            number=_text(kept, "number"),
            user_id=_text(kept, "user_id"),
        )
    if code in _CALL_EVENTS:
        identity_raw = _text(kept, "identity")
        return _CALL_EVENTS[code](
            company_id=company_id,
            company=company,
            params=kept,
            sender_id=_text(kept, "sender_id"),
            sender_type=_enum(kept, "sender_type", CallableType),
            call_id=_id(kept, "call_id", required=True),
            ext_id=_text(kept, "ext_id"),
            number=(kept.get("number") or "").strip(),
            ext=(kept.get("ext") or "").strip(),
            identity=Identity.parse(identity_raw) if identity_raw else None,
            identity_raw=identity_raw,
            group=_text(kept, "group"),
        )
    return UnknownEvent(ssn_event=code, company_id=company_id, company=company, params=kept)
