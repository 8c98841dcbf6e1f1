"""What the SOAP side trades in: the errors it raises, a request ready to send, an answer.

Apart from ``envelope`` (the command builders) and ``soap_xml`` (the XML both ways) so that
both can use them without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ..errors import CallbridgeError

#: What the dry-run prints instead of the password hash.
MASK: Final = "********"
#: The ``soap:encodingStyle`` attribute, as printed in the document.
ENCODING_STYLE: Final = "http://www.w3.org/2001/12/soap-encoding"
#: The XML declaration, written by hand so it reads exactly like the document's.
XML_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'
#: Longest value accepted in any one command field.
MAX_FIELD_LENGTH: Final = 255


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
