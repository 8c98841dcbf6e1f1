"""The SOAP envelope of VOIspeed commands: what each command carries, and the XML both ways.

Everything here is pure (no network): the SOAP client sends what ``build_envelope`` makes and
hands the bytes it gets back to ``parse_response``. The CLI's ``--dry-run`` and the tests use
the same functions, so what is printed or checked is exactly what would be sent.

Building: ``xml.etree.ElementTree`` writes every value as escaped text, so a number such as
``<&]]>"`` stays text. Prefixed names (``soap:Envelope``, ``vspbx:CallReq``) are written
literally with their ``xmlns:`` declarations, rather than through ElementTree's process-wide
prefix registry, because the namespace URIs are settings and two clients with different
settings must not disturb each other. The header and command children are unqualified, as in
the document.

Parsing: ``defusedxml`` refuses DTDs, entity declarations and external references, so a
hostile or broken PBX answer (XXE, billion laughs) becomes a ``SoapResponseError``, never a
file read or a memory blow-up.

The document does not describe responses. We read the first element of ``soap:Body``: a
``Fault`` (SOAP 1.1 ``faultcode``/``faultstring`` or SOAP 1.2 ``Code/Value``/``Reason/Text``)
becomes ``SoapFault``; anything else is the command's response and its children become a
``dict[str, str]``. An empty 2xx body is a success with no values.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _safe_fromstring

from ..errors import CallbridgeError, ConfigurationError
from ..settings import PbxSettings
from .codes import CallableType, CrudAction, CrudEntityType, GatewayType
from .ids import (
    AmbiguousIdentifier,
    InvalidIdentifier,
    new_external_id,
    parse_user_id,
    validate_external_id,
)

#: What the dry-run prints instead of the password hash.
MASK: Final = "********"
#: The ``soap:encodingStyle`` attribute, as printed in the document.
ENCODING_STYLE: Final = "http://www.w3.org/2001/12/soap-encoding"
#: The XML declaration, written by hand so it reads exactly like the document's.
XML_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'
#: Longest value accepted in any one command field.
MAX_FIELD_LENGTH: Final = 255

_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")
# Characters XML 1.0 allows, minus CR (a parser turns it into LF, so it would not round-trip).
_XML_TEXT = re.compile("[\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
_DIAL_SEPARATORS = re.compile(r"[\s\-./()]")
_DIAL_STRING = re.compile(r"\+?[0-9*#]{1,32}")


class PbxError(CallbridgeError):
    """Base of every error the PBX side raises: refusals, bad answers, network trouble."""


class InvalidRequest(PbxError, ValueError):
    """A command argument is malformed; nothing was sent. ``field`` names the element."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class SoapFault(PbxError):
    """The PBX answered with a SOAP Fault: it received the command and refused it."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"SOAP fault {code or '(no code)'}: {text or '(no text)'}")
        self.code = code
        self.text = text


class SoapResponseError(PbxError):
    """The PBX's answer is not a SOAP envelope we can read, or is hostile (DTD, entities).

    The PBX did receive the command; whether it acted is as unknown as the answer.
    """


@dataclass(frozen=True)
class SoapRequest:
    """One command ready to send: its name, its fields in document order, and the external id.

    ``external_id`` is set for CallReq and CallReqExt (given or generated), else None.
    """

    command: str
    fields: tuple[tuple[str, str], ...]
    external_id: str | None = None


@dataclass(frozen=True)
class SoapResult:
    """The PBX's answer to one command: the response element's children as text.

    The document does not define responses; a simulator or a real PBX may answer
    ``<vspbx:CallReqResponse><user_call_id>...</user_call_id></vspbx:CallReqResponse>``.
    """

    command: str
    values: Mapping[str, str] = field(default_factory=dict)
    #: The local name of the response element (``CallReqResponse``), or None for an empty body.
    response_element: str | None = None

    def get(self, name: str) -> str | None:
        """One value of the response, or None."""
        return self.values.get(name)


@dataclass(frozen=True)
class CallReqResult(SoapResult):
    """The answer to CallReq/CallReqExt, with the external id that was sent.

    Events 17-21 of the resulting call carry this id as ``ext_id``.
    """

    external_id: str = ""

    @property
    def user_call_id(self) -> str | None:
        """The user call id, if the PBX's answer carries one."""
        return self.values.get("user_call_id")


# --- argument checks ---------------------------------------------------------------------


def _text(name: str, value: str, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(name, f"expected text, got {type(value).__name__}")
    text = value.strip()
    if required and not text:
        raise InvalidRequest(name, "must not be empty")
    if len(text) > MAX_FIELD_LENGTH:
        raise InvalidRequest(name, f"longer than {MAX_FIELD_LENGTH} characters")
    if not _XML_TEXT.fullmatch(text):
        raise InvalidRequest(name, "contains control characters XML cannot carry")
    return text


def _user(name: str, value: str) -> str:
    """A PBX user such as ``auth-mario@acme``: sent as given (the document's own placeholder,
    ``auth-First name@domain``, does not rule out spaces), but never empty."""
    return _text(name, value)


def _id(name: str, value: str | int) -> str:
    """An identifier: an int as its value; text as ``parse_user_id`` reads it (8 characters
    as given; a short all-digit id whose hex and decimal readings differ is refused)."""
    try:
        return parse_user_id(value)
    except InvalidIdentifier as exc:
        raise InvalidRequest(name, str(exc)) from None
    except (TypeError, AttributeError):
        raise InvalidRequest(name, "expected an identifier such as 000012A0") from None


def _number(name: str, value: str, *, required: bool = True) -> str:
    """A dial string: digits, ``*``, ``#``, an optional leading ``+``; separators removed."""
    text = _text(name, value, required=required)
    if not text:
        return ""
    compact = _DIAL_SEPARATORS.sub("", text)
    if not _DIAL_STRING.fullmatch(compact):
        raise InvalidRequest(
            name, f"expected a number of up to 32 digits, '*', '#', leading '+'; got {text!r:.40}"
        )
    return compact


def _external_id(name: str, value: str | None) -> str:
    if value is None:
        return new_external_id()
    try:
        return validate_external_id(value)
    except InvalidIdentifier as exc:
        raise InvalidRequest(name, str(exc)) from None


_E = TypeVar("_E", CallableType, CrudAction, CrudEntityType, GatewayType)


def _enum(name: str, kind: type[_E], value: _E | int) -> _E:
    try:
        return kind(value)
    except (ValueError, TypeError):
        names = ", ".join(f"{m.value}={m.name.lower()}" for m in kind)
        raise InvalidRequest(name, f"expected one of {names}; got {value!r:.20}") from None


def _code(value: int) -> str:
    return str(int(value))


# --- one builder per command, in the document's element order ------------------------------


def call_req(
    user: str, number: str, device_id: str | int | None = None, external_id: str | None = None
) -> SoapRequest:
    """CallReq: ``user`` calls ``number``, optionally from one device; returns the request."""
    ext = _external_id("call_req_ext_id", external_id)
    fields = [
        ("param1", _user("param1", user)),
        ("call_req_number", _number("call_req_number", number)),
    ]
    if device_id is not None:
        fields.append(("call_req_device_id", _id("call_req_device_id", device_id)))
    fields.append(("call_req_ext_id", ext))
    return SoapRequest("CallReq", tuple(fields), ext)


def call_req_ext(
    user: str,
    *,
    calling_id: str | int,
    called_id: str | int,
    calling_type: CallableType | int,
    called_type: CallableType | int,
    calling_number: str = "",
    called_number: str = "",
    device_id: str | int | None = None,
    external_id: str | None = None,
    record: bool = False,
) -> SoapRequest:
    """CallReqExt: a call between two entities of any callable type (user, group, IVR, ...)."""
    ext = _external_id("call_request_external_id", external_id)
    fields = [
        ("param1", _user("param1", user)),
        ("call_request_calling_id", _id("call_request_calling_id", calling_id)),
        ("call_request_called_id", _id("call_request_called_id", called_id)),
        (
            "call_request_calling_type",
            _code(_enum("call_request_calling_type", CallableType, calling_type)),
        ),
        (
            "call_request_called_type",
            _code(_enum("call_request_called_type", CallableType, called_type)),
        ),
        (
            "call_request_calling_number",
            _number("call_request_calling_number", calling_number, required=False),
        ),
        (
            "call_request_called_number",
            _number("call_request_called_number", called_number, required=False),
        ),
        ("call_request_external_id", ext),
    ]
    if device_id is not None:
        fields.append(("call_request_device_id", _id("call_request_device_id", device_id)))
    fields.append(("call_request_to_be_rec", "1" if record else "0"))
    return SoapRequest("CallReqExt", tuple(fields), ext)


def _user_call(command: str, user: str, user_call_id: str | int) -> SoapRequest:
    return SoapRequest(
        command, (("param1", _user("param1", user)), ("param2", _id("param2", user_call_id)))
    )


def call_accept(user: str, user_call_id: str | int) -> SoapRequest:
    """CallAccept: answer a ringing call."""
    return _user_call("CallAccept", user, user_call_id)


def call_hold(user: str, user_call_id: str | int) -> SoapRequest:
    """CallHold: put a call on hold."""
    return _user_call("CallHold", user, user_call_id)


def call_retrieve(user: str, user_call_id: str | int) -> SoapRequest:
    """CallRetrieve: take a call off hold."""
    return _user_call("CallRetrieve", user, user_call_id)


def call_disconnect(user: str, user_call_id: str | int) -> SoapRequest:
    """CallDisconnect: hang up a call."""
    return _user_call("CallDisconnect", user, user_call_id)


def call_rec_start(user: str, user_call_id: str | int) -> SoapRequest:
    """CallRecStart: start recording a call."""
    return _user_call("CallRecStart", user, user_call_id)


def call_rec_stop(user: str, user_call_id: str | int) -> SoapRequest:
    """CallRecStop: stop recording a call."""
    return _user_call("CallRecStop", user, user_call_id)


def call_divert(user: str, user_call_id: str | int, recipient: str) -> SoapRequest:
    """CallDivert: send a call to another extension."""
    return SoapRequest(
        "CallDivert",
        (
            ("param1", _user("param1", user)),
            ("call_divert_callid", _id("call_divert_callid", user_call_id)),
            ("call_divert_recipient", _number("call_divert_recipient", recipient)),
        ),
    )


def _call_id(name: str, value: str | int) -> str:
    """A user call id where an extension is a likely slip (CallTransfer's two calls)."""
    try:
        return parse_user_id(value)
    except AmbiguousIdentifier as exc:
        raise InvalidRequest(
            name,
            f"{exc}. CallTransfer joins two calls by their user call ids; if {exc.text} is an "
            "extension, send the call there with CallDivert instead",
        ) from None
    except (InvalidIdentifier, TypeError, AttributeError):
        return _id(name, value)


def call_transfer(user: str, from_call_id: str | int, to_call_id: str | int) -> SoapRequest:
    """CallTransfer: join the call ``from_call_id`` to the call ``to_call_id``.

    Both are user call ids. An extension typed instead (``202``) is refused, never read as
    the hex id ``00000202``: to send a call to an extension, use CallDivert.
    """
    return SoapRequest(
        "CallTransfer",
        (
            ("param1", _user("param1", user)),
            ("call_transfer_callidfrom", _call_id("call_transfer_callidfrom", from_call_id)),
            ("call_transfer_callidto", _call_id("call_transfer_callidto", to_call_id)),
        ),
    )


def call_device_switch(user: str, user_call_id: str | int, device_id: str | int) -> SoapRequest:
    """CallDeviceSwitch: move a running call to another device of the user."""
    return SoapRequest(
        "CallDeviceSwitch",
        (
            ("param1", _user("param1", user)),
            ("param2", _id("param2", user_call_id)),
            ("call_device_switch_id", _id("call_device_switch_id", device_id)),
        ),
    )


def call_pick(user: str, number: str, device_id: str | int) -> SoapRequest:
    """CallPick: pick up a call ringing on extension ``number``, on the device given."""
    return SoapRequest(
        "CallPick",
        (
            ("param1", _user("param1", user)),
            ("call_pick_number", _number("call_pick_number", number)),
            ("call_pick_device_id", _id("call_pick_device_id", device_id)),
        ),
    )


def crud_event(
    action: CrudAction | int,
    entity_type: CrudEntityType | int,
    entity_subtype: GatewayType | int | None,
    entity_id: str | int,
) -> SoapRequest:
    """CRUDevent: tell the PBX that one of its entities changed (or to act on it).

    The subtype exists only for gateways: it is required for ``CrudEntityType.GATEWAY``,
    refused for any other type, and then left out of the envelope.
    """
    kind = _enum("crud_event_entity_type", CrudEntityType, entity_type)
    fields = [
        ("crud_event_action", _code(_enum("crud_event_action", CrudAction, action))),
        ("crud_event_entity_type", _code(kind)),
    ]
    if kind is CrudEntityType.GATEWAY:
        if entity_subtype is None:
            raise InvalidRequest("crud_event_entity_subtype", "required for gateways")
        subtype = _enum("crud_event_entity_subtype", GatewayType, entity_subtype)
        fields.append(("crud_event_entity_subtype", _code(subtype)))
    elif entity_subtype is not None:
        raise InvalidRequest("crud_event_entity_subtype", "only gateways have a subtype")
    fields.append(("crud_event_entity_id", _id("crud_event_entity_id", entity_id)))
    return SoapRequest("CRUDevent", tuple(fields))


#: Every command of the document, by its SOAP name.
COMMANDS: Final = (
    "CallReq",
    "CallReqExt",
    "CallAccept",
    "CallHold",
    "CallRetrieve",
    "CallDivert",
    "CallTransfer",
    "CallDisconnect",
    "CallDeviceSwitch",
    "CallPick",
    "CallRecStart",
    "CallRecStop",
    "CRUDevent",
)


# --- XML -------------------------------------------------------------------------------------


def _xml_name(variable: str, value: str) -> str:
    if not _XML_NAME.fullmatch(value):
        raise ConfigurationError(
            f"{variable}: {value!r:.40} is not an XML element name (letters, digits, '._-')"
        )
    return value


def _credentials(settings: PbxSettings) -> tuple[str, str]:
    """The header user and the password hash, or a ConfigurationError naming the variables."""
    user = (settings.user or "").strip()
    missing = []
    if not user:
        missing.append("CALLBRIDGE_PBX__USER (the integration user, auth-Name@domain)")
    digest = settings.password_hash()
    if digest is None:
        missing.append("CALLBRIDGE_PBX__PASSWORD or CALLBRIDGE_PBX__PASSWORD_MD5")
    if missing:
        raise ConfigurationError("the PBX's SOAP interface needs " + " and ".join(missing))
    assert digest is not None
    try:
        _text("header user", user)
    except InvalidRequest as exc:
        raise ConfigurationError(f"CALLBRIDGE_PBX__USER: {exc.reason}") from None
    return user, digest


def check_settings(settings: PbxSettings) -> None:
    """Raise ConfigurationError, naming the variable, if these settings cannot make a request."""
    _credentials(settings)
    _xml_name("CALLBRIDGE_PBX__HEADER_USER_ELEMENT", settings.header_user_element)
    _xml_name("CALLBRIDGE_PBX__HEADER_PASSWORD_ELEMENT", settings.header_password_element)
    soap_action(settings, "CallReq")


def soap_action(settings: PbxSettings, command: str) -> str:
    """The SOAPAction header for one command, from ``CALLBRIDGE_PBX__SOAP_ACTION``."""
    try:
        value = settings.soap_action.format(namespace=settings.namespace, command=command)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigurationError(
            f"CALLBRIDGE_PBX__SOAP_ACTION: may use only {{namespace}} and {{command}} ({exc})"
        ) from None
    if any(c in value for c in "\r\n\x00"):
        raise ConfigurationError("CALLBRIDGE_PBX__SOAP_ACTION: must be one line")
    return value


def build_envelope(
    settings: PbxSettings,
    command: str,
    fields: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    mask_password: bool = False,
) -> bytes:
    """The UTF-8 SOAP envelope of one command, with the header the document prescribes.

    ``fields`` are the command's children in order. ``mask_password`` writes ``********``
    instead of the hash (for printing). Raises ConfigurationError when the credentials or the
    header element names are missing or unusable, InvalidRequest for a value XML cannot carry.
    """
    user, digest = _credentials(settings)
    user_tag = _xml_name("CALLBRIDGE_PBX__HEADER_USER_ELEMENT", settings.header_user_element)
    password_tag = _xml_name(
        "CALLBRIDGE_PBX__HEADER_PASSWORD_ELEMENT", settings.header_password_element
    )
    _xml_name("command", command)
    pairs = list(fields.items() if isinstance(fields, Mapping) else fields)

    envelope = ET.Element(
        "soap:Envelope",
        {
            "xmlns:soap": settings.envelope_namespace,
            "xmlns:vspbx": settings.namespace,
            "soap:encodingStyle": ENCODING_STYLE,
        },
    )
    header = ET.SubElement(envelope, "soap:Header")
    ET.SubElement(header, user_tag).text = user
    ET.SubElement(header, password_tag).text = MASK if mask_password else digest
    body = ET.SubElement(envelope, "soap:Body")
    element = ET.SubElement(body, f"vspbx:{command}")
    for name, value in pairs:
        ET.SubElement(element, _xml_name(name, name)).text = _text(name, value, required=False)
    return XML_DECLARATION + ET.tostring(envelope, encoding="unicode").encode("utf-8")


def _local(tag: object) -> str:
    """The local part of an ElementTree tag (``{uri}Body`` -> ``Body``)."""
    text = tag if isinstance(tag, str) else ""
    return text.rpartition("}")[2]


def _child(element: ET.Element, local: str) -> ET.Element | None:
    for item in element:
        if _local(item.tag) == local:
            return item
    return None


def _all_text(element: ET.Element | None) -> str:
    return "" if element is None else "".join(element.itertext()).strip()


def _fault(fault: ET.Element) -> SoapFault:
    """Read a SOAP 1.1 or 1.2 Fault."""
    code = _child(fault, "faultcode")
    if code is not None:  # SOAP 1.1
        return SoapFault(_all_text(code), _all_text(_child(fault, "faultstring")))
    code_el = _child(fault, "Code")
    value = _child(code_el, "Value") if code_el is not None else None
    reason = _child(fault, "Reason")
    text = _child(reason, "Text") if reason is not None else None
    return SoapFault(_all_text(value), _all_text(text))


def parse_response(command: str, body: bytes) -> SoapResult:
    """Read the PBX's answer to ``command``.

    Returns the values of the response element, raises SoapFault for a Fault and
    SoapResponseError for anything unreadable (not XML, DTDs or entities, not an envelope).
    """
    if not body.strip():
        return SoapResult(command, {})
    try:
        root = _safe_fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise SoapResponseError(
            f"refused the PBX's answer to {command}: {type(exc).__name__} (DTDs and entities "
            "are not allowed)"
        ) from None
    except (ET.ParseError, ValueError) as exc:
        raise SoapResponseError(f"the PBX's answer to {command} is not XML: {exc}") from None
    if _local(root.tag) != "Envelope":
        raise SoapResponseError(
            f"the PBX's answer to {command} is not a SOAP envelope (root {_local(root.tag)!r:.40})"
        )
    body_el = _child(root, "Body")
    if body_el is None:
        raise SoapResponseError(f"the PBX's answer to {command} has no Body")
    response = next(iter(body_el), None)
    if response is None:
        return SoapResult(command, {})
    if _local(response.tag) == "Fault":
        raise _fault(response)
    values = {_local(child.tag): _all_text(child) for child in response}
    return SoapResult(command, values, _local(response.tag))
