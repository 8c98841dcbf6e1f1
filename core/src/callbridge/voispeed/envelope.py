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

from typing import Final

from .codes import CallableType, CrudAction, CrudEntityType, GatewayType
from .ids import (
    AmbiguousIdentifier,
    InvalidIdentifier,
    parse_user_id,
)
from .soap_args import _code, _enum, _external_id, _id, _number, _user
from .soap_types import (
    ENCODING_STYLE,
    MASK,
    MAX_FIELD_LENGTH,
    XML_DECLARATION,
    CallReqResult,
    InvalidRequest,
    PbxError,
    SoapFault,
    SoapRequest,
    SoapResponseError,
    SoapResult,
)
from .soap_xml import build_envelope, check_settings, parse_response, soap_action

#: The types, errors and XML functions live in ``soap_types`` and ``soap_xml``; importing them
#: from here keeps working.
__all__ = [
    "ENCODING_STYLE",
    "MASK",
    "MAX_FIELD_LENGTH",
    "XML_DECLARATION",
    "CallReqResult",
    "InvalidRequest",
    "PbxError",
    "SoapFault",
    "SoapRequest",
    "SoapResponseError",
    "SoapResult",
    "build_envelope",
    "check_settings",
    "parse_response",
    "soap_action",
]


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
