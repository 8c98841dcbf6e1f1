"""The XML of a SOAP command: the envelope we send and the answer we read back.

Pure (no network); see ``envelope``'s docstring for why it is built and parsed this way.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _safe_fromstring

from ..errors import ConfigurationError
from ..settings import PbxSettings
from .soap_args import _text
from .soap_types import (
    ENCODING_STYLE,
    MASK,
    XML_DECLARATION,
    InvalidRequest,
    SoapFault,
    SoapResponseError,
    SoapResult,
)

_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")


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
