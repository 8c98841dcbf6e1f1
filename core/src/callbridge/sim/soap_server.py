"""The simulated PBX's SOAP interface: parse, authenticate, dispatch to the engine, answer.

What it accepts is what the document prints (and what callbridge's ``SoapClient`` sends):

    <soap:Envelope xmlns:soap="{envelope_namespace}" xmlns:vspbx="{namespace}" ...>
      <soap:Header><username>auth-Name@domain</username><password>md5hex</password></soap:Header>
      <soap:Body><vspbx:CallReq><param1>...</param1>...</vspbx:CallReq></soap:Body>
    </soap:Envelope>

Namespaces and header element names come from ``PbxSettings`` so both sides are configured
alike. The header and command children are matched by local name. Every command's element
names are checked against the document: a missing required element, an element the command
does not have, a wrong header hash, an unknown user call id or a malformed body each get a
SOAP Fault (HTTP 500, ``soap:Client``) and change nothing. Documents with a DTD or entities
are refused before parsing (defusedxml), so XXE and entity expansion cannot happen.

Success is ``<vspbx:{Command}Response>`` with unqualified children (``result`` = 0,
``user_call_id``, ``call_id``, ``external_id`` where they apply). ``SoapService.answer``
makes it answer a command it carried out with one of the non-SOAP 200s a real PBX (or a proxy
before it) may send instead: an empty body, an HTML page, ``OK`` or a bare
``<result>0</result>`` (``NON_SOAP_ANSWERS``), so that clients can be tested against them.
"""

from __future__ import annotations

import logging
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import defusedxml
from defusedxml import ElementTree as SafeElementTree
from pydantic import SecretStr

from ..settings import PbxSettings
from ..voispeed.codes import CallableType, CrudAction, CrudEntityType, GatewayType
from ..voispeed.ids import InvalidIdentifier, normalize_id
from .engine import CallEngine, LegState, SimError, SimLeg
from .model import Group, User

log = logging.getLogger(__name__)

#: Requests larger than this are refused without parsing.
MAX_BODY = 256 * 1024

#: How the simulator may answer a command it carried out, besides ``soap`` (the default).
NON_SOAP_ANSWERS: dict[str, bytes] = {
    "empty": b"",
    "html": b"<html><body><p>OK</p></body></html>",
    "ok": b"OK",
    "result": b"<result>0</result>",
}
ANSWER_STYLES: tuple[str, ...] = ("soap", *NON_SOAP_ANSWERS)


@dataclass(frozen=True)
class CommandSpec:
    """The element names of one command, as the document lists them."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def allowed(self) -> frozenset[str]:
        """Every element the command may carry."""
        return frozenset(self.required + self.optional)


_ONE_CALL = CommandSpec(("param1", "param2"))

#: The 13 commands of the document.
COMMANDS: dict[str, CommandSpec] = {
    "CallReq": CommandSpec(
        ("param1", "call_req_number"), ("call_req_device_id", "call_req_ext_id")
    ),
    "CallReqExt": CommandSpec(
        ("param1",),
        (
            "call_request_calling_id",
            "call_request_called_id",
            "call_request_calling_type",
            "call_request_called_type",
            "call_request_calling_number",
            "call_request_called_number",
            "call_request_external_id",
            "call_request_device_id",
            "call_request_to_be_rec",
        ),
    ),
    "CallAccept": _ONE_CALL,
    "CallHold": _ONE_CALL,
    "CallRetrieve": _ONE_CALL,
    "CallDivert": CommandSpec(("param1", "call_divert_callid", "call_divert_recipient")),
    "CallTransfer": CommandSpec(("param1", "call_transfer_callidfrom", "call_transfer_callidto")),
    "CallDisconnect": _ONE_CALL,
    "CallDeviceSwitch": CommandSpec(("param1", "param2", "call_device_switch_id")),
    "CallPick": CommandSpec(("param1", "call_pick_number"), ("call_pick_device_id",)),
    "CallRecStart": _ONE_CALL,
    "CallRecStop": _ONE_CALL,
    "CRUDevent": CommandSpec(
        ("crud_event_action", "crud_event_entity_type"),
        ("param1", "crud_event_entity_subtype", "crud_event_entity_id"),
    ),
}


class SimSoapFault(Exception):
    """A request the PBX refuses; becomes a SOAP Fault."""

    def __init__(self, reason: str, code: str = "soap:Client") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class SoapRequest:
    """One parsed request: the header credentials and the command's fields."""

    command: str
    username: str
    password: SecretStr = field(repr=False)
    fields: dict[str, str]


@dataclass(frozen=True)
class SoapLogEntry:
    """One request as the simulator received it (never the password hash)."""

    command: str | None
    fields: dict[str, str]
    username: str | None
    soap_action: str | None
    fault: str | None = None
    response: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The request succeeded."""
        return self.fault is None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2] if tag.startswith("{") else tag


def _ns(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def _text(element: ET.Element) -> str:
    if len(element):
        raise SimSoapFault(f"element {_local(element.tag)} must contain text, not elements")
    return (element.text or "").strip()


def parse_request(body: bytes, settings: PbxSettings) -> SoapRequest:
    """Parse and validate one SOAP envelope (no authentication yet), or raise SimSoapFault."""
    if len(body) > MAX_BODY:
        raise SimSoapFault(f"request larger than {MAX_BODY} bytes")
    if not body.strip():
        raise SimSoapFault("empty request body")
    try:
        root = SafeElementTree.fromstring(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DefusedXmlException as exc:
        raise SimSoapFault(f"forbidden XML construct: {type(exc).__name__}") from None
    except ET.ParseError as exc:
        raise SimSoapFault(f"malformed XML: {exc}") from None
    env = settings.envelope_namespace
    if root.tag != f"{{{env}}}Envelope":
        raise SimSoapFault(f"root element must be Envelope in namespace {env}")
    header = root.find(f"{{{env}}}Header")
    body_el = root.find(f"{{{env}}}Body")
    if header is None:
        raise SimSoapFault("missing soap:Header with the credentials")
    if body_el is None:
        raise SimSoapFault("missing soap:Body")
    creds: dict[str, str] = {}
    for child in header:
        creds[_local(child.tag)] = _text(child)
    username = creds.get(settings.header_user_element, "")
    password = creds.get(settings.header_password_element, "")
    if not username or not password:
        raise SimSoapFault(
            f"the header must carry {settings.header_user_element} and "
            f"{settings.header_password_element}"
        )
    commands = list(body_el)
    if len(commands) != 1:
        raise SimSoapFault(f"soap:Body must hold exactly one command, found {len(commands)}")
    command_el = commands[0]
    if _ns(command_el.tag) != settings.namespace:
        raise SimSoapFault(
            f"command must be in namespace {settings.namespace}, got {_ns(command_el.tag)!r}"
        )
    command = _local(command_el.tag)
    spec = COMMANDS.get(command)
    if spec is None:
        raise SimSoapFault(f"unknown command {command!r}")
    fields: dict[str, str] = {}
    for child in command_el:
        name = _local(child.tag)
        if name not in spec.allowed:
            raise SimSoapFault(f"{command} has no element {name!r}")
        if name in fields:
            raise SimSoapFault(f"{command}: element {name!r} given twice")
        fields[name] = _text(child)
    missing = [name for name in spec.required if not fields.get(name)]
    if missing:
        raise SimSoapFault(f"{command}: missing {', '.join(missing)}")
    return SoapRequest(command, username, SecretStr(password), fields)


def envelope(settings: PbxSettings, inner: str) -> bytes:
    """Wrap ``inner`` in a SOAP envelope using the configured namespaces."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soap:Envelope xmlns:soap="{escape(settings.envelope_namespace)}" '
        f'xmlns:vspbx="{escape(settings.namespace)}"><soap:Body>{inner}</soap:Body>'
        "</soap:Envelope>"
    ).encode()


def response_body(settings: PbxSettings, command: str, values: dict[str, str]) -> bytes:
    """``<vspbx:{command}Response>`` with one unqualified child per value."""
    children = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in values.items())
    return envelope(settings, f"<vspbx:{command}Response>{children}</vspbx:{command}Response>")


def fault_body(settings: PbxSettings, fault: SimSoapFault) -> bytes:
    """A SOAP Fault in the shape the client expects (faultcode, faultstring)."""
    return envelope(
        settings,
        f"<soap:Fault><faultcode>{escape(fault.code)}</faultcode>"
        f"<faultstring>{escape(fault.reason)}</faultstring></soap:Fault>",
    )


class SoapService:
    """Authenticates requests and runs them on the engine; keeps ``log`` of every request."""

    def __init__(self, engine: CallEngine, settings: PbxSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.log: list[SoapLogEntry] = []
        #: ``soap``, or a key of ``NON_SOAP_ANSWERS``: the body of a 200 (faults stay SOAP).
        self.answer = "soap"
        self._lock = threading.Lock()

    def handle(self, body: bytes, soap_action: str | None = None) -> tuple[int, bytes]:
        """Answer one request: (HTTP status, response body). Never raises."""
        request: SoapRequest | None = None
        try:
            request = parse_request(body, self.settings)
            caller = self._authenticate(request)
            values = self._dispatch(request, caller)
        except SimSoapFault as fault:
            self._record(request, soap_action, fault=fault.reason)
            return 500, fault_body(self.settings, fault)
        except SimError as exc:
            self._record(request, soap_action, fault=str(exc))
            return 500, fault_body(self.settings, SimSoapFault(str(exc)))
        except Exception:
            log.exception("simulator failed on %s", request.command if request else "a request")
            self._record(request, soap_action, fault="internal error")
            return 500, fault_body(self.settings, SimSoapFault("internal error", "soap:Server"))
        self._record(request, soap_action, response=values)
        if self.answer in NON_SOAP_ANSWERS:
            return 200, NON_SOAP_ANSWERS[self.answer]
        return 200, response_body(self.settings, request.command, values)

    def _record(
        self,
        request: SoapRequest | None,
        soap_action: str | None,
        *,
        fault: str | None = None,
        response: dict[str, str] | None = None,
    ) -> None:
        entry = SoapLogEntry(
            command=request.command if request else None,
            fields=dict(request.fields) if request else {},
            username=request.username if request else None,
            soap_action=soap_action,
            fault=fault,
            response=response or {},
        )
        with self._lock:
            self.log.append(entry)

    def _authenticate(self, request: SoapRequest) -> User:
        user = self.engine.directory.user_by_login(request.username)
        if user is None or not user.check_password(request.password.get_secret_value()):
            # One message for both cases: do not tell a caller which logins exist.
            raise SimSoapFault("authentication failed: unknown user or wrong password hash")
        return user

    # ------------------------------------------------------------------ commands

    def _param_user(self, fields: dict[str, str], caller: User) -> User:
        """``param1``'s user, who must be of the authenticated user's company: a company's
        integration account never acts for another company's users (a multi-company PBX)."""
        who = fields.get("param1", "")
        user = self.engine.directory.resolve_user(who)
        if user is None or user.company_id != caller.company_id:
            raise SimSoapFault(f"unknown user {who!r} in param1")
        return user

    def _leg_of(self, user: User, user_call_id: str) -> SimLeg:
        leg = self.engine.leg(user_call_id)
        if leg.user.id != user.id:
            raise SimSoapFault(f"call {leg.user_call_id} does not belong to {user.login}")
        if not leg.live:
            raise SimSoapFault(f"call {leg.user_call_id} has already ended")
        return leg

    def _dispatch(self, request: SoapRequest, caller: User) -> dict[str, str]:
        f = request.fields
        command = request.command
        if command == "CRUDevent":
            return self._crud(f)
        user = self._param_user(f, caller)
        if command == "CallReq":
            call = self.engine.outgoing_call(
                user.extension,
                f["call_req_number"],
                ext_id=f.get("call_req_ext_id") or None,
                device_id=f.get("call_req_device_id") or None,
            )
            leg = call.legs[0]
            return _ok(user_call_id=leg.user_call_id, call_id=call.call_id, external_id=call.ext_id)
        if command == "CallReqExt":
            return self._call_req_ext(user, f)
        if command == "CallDivert":
            leg = self._leg_of(user, f["call_divert_callid"])
            new = self.engine.divert(leg, f["call_divert_recipient"])
            return _ok(user_call_id=leg.user_call_id, new_user_call_id=new.user_call_id)
        if command == "CallTransfer":
            leg_from = self._leg_of(user, f["call_transfer_callidfrom"])
            leg_to = self._leg_of(user, f["call_transfer_callidto"])
            call = self.engine.transfer(leg_from, leg_to)
            return _ok(user_call_id=leg_from.user_call_id, call_id=call.call_id)
        if command == "CallPick":
            leg = self.engine.pick(
                user.extension, f["call_pick_number"], f.get("call_pick_device_id") or None
            )
            return _ok(user_call_id=leg.user_call_id, call_id=leg.call.call_id)
        leg = self._leg_of(user, f["param2"])
        if command == "CallAccept":
            self.engine.accept(leg)
        elif command == "CallHold":
            self.engine.set_leg_state(leg, LegState.HELD)
        elif command == "CallRetrieve":
            self.engine.set_leg_state(leg, LegState.ACTIVE)
        elif command == "CallDisconnect":
            self.engine.disconnect(leg)
        elif command == "CallDeviceSwitch":
            self.engine.switch_device(leg, f["call_device_switch_id"])
        elif command == "CallRecStart":
            self.engine.record(leg, True)
        elif command == "CallRecStop":
            self.engine.record(leg, False)
        else:  # pragma: no cover - COMMANDS and this dispatch list the same names
            raise SimSoapFault(f"command {command} not implemented", "soap:Server")
        return _ok(user_call_id=leg.user_call_id)

    def _call_req_ext(self, user: User, f: dict[str, str]) -> dict[str, str]:
        """CallReqExt: caller and callee by id+type or by number (users and numbers only)."""
        directory = self.engine.directory
        calling = user
        calling_type = _enum(CallableType, f, "call_request_calling_type", CallableType.USER)
        called_type = _enum(CallableType, f, "call_request_called_type", CallableType.USER)
        if f.get("call_request_calling_number"):
            found = directory.user_by_extension(f["call_request_calling_number"])
            if found is None:
                raise SimSoapFault(f"unknown calling number {f['call_request_calling_number']!r}")
            calling = found
        elif f.get("call_request_calling_id"):
            if calling_type is not CallableType.USER:
                raise SimSoapFault("the simulator places calls only for callable_user callers")
            calling = _user_by_wire_id(self.engine, f["call_request_calling_id"])
        if f.get("call_request_called_number"):
            number = f["call_request_called_number"]
        elif f.get("call_request_called_id") and called_type is CallableType.GROUP:
            number = _group_by_wire_id(self.engine, f["call_request_called_id"]).number
        elif f.get("call_request_called_id"):
            if called_type is not CallableType.USER:
                raise SimSoapFault(
                    "call_request_called_id is supported for callable_user and callable_group"
                )
            number = _user_by_wire_id(self.engine, f["call_request_called_id"]).extension
        else:
            raise SimSoapFault(
                "CallReqExt: give call_request_called_number or call_request_called_id"
            )
        record = f.get("call_request_to_be_rec", "0") or "0"
        if record not in ("0", "1"):
            raise SimSoapFault("call_request_to_be_rec must be 0 or 1")
        call = self.engine.outgoing_call(
            calling.extension,
            number,
            ext_id=f.get("call_request_external_id") or None,
            device_id=f.get("call_request_device_id") or None,
        )
        leg = call.legs[0]
        leg.recording = record == "1"
        return _ok(user_call_id=leg.user_call_id, call_id=call.call_id, external_id=call.ext_id)

    def _crud(self, f: dict[str, str]) -> dict[str, str]:
        _enum(CrudAction, f, "crud_event_action", None)
        entity = _enum(CrudEntityType, f, "crud_event_entity_type", None)
        if f.get("crud_event_entity_subtype"):
            if entity is not CrudEntityType.GATEWAY:
                raise SimSoapFault("crud_event_entity_subtype applies to cet_gateway only")
            _enum(GatewayType, f, "crud_event_entity_subtype", None)
        if f.get("crud_event_entity_id"):
            try:
                normalize_id(f["crud_event_entity_id"])
            except InvalidIdentifier as exc:
                raise SimSoapFault(f"crud_event_entity_id: {exc}") from None
        self.engine.record_crud(f)
        return _ok()


def _ok(**values: str) -> dict[str, str]:
    return {"result": "0", **values}


def _enum(kind: Any, f: dict[str, str], name: str, default: Any) -> Any:
    raw = f.get(name, "")
    if raw == "":
        if default is None:
            raise SimSoapFault(f"missing {name}")
        return default
    try:
        return kind(int(raw))
    except ValueError:
        raise SimSoapFault(f"{name}: {raw!r:.20} is not a valid {kind.__name__}") from None


def _user_by_wire_id(engine: CallEngine, raw: str) -> User:
    try:
        wanted = normalize_id(raw)
    except InvalidIdentifier as exc:
        raise SimSoapFault(f"bad user id: {exc}") from None
    user = next((u for u in engine.directory.users if u.wire_id == wanted), None)
    if user is None:
        raise SimSoapFault(f"unknown user id {wanted}")
    return user


def _group_by_wire_id(engine: CallEngine, raw: str) -> Group:
    try:
        wanted = normalize_id(raw)
    except InvalidIdentifier as exc:
        raise SimSoapFault(f"bad group id: {exc}") from None
    group = next((g for g in engine.directory.groups if normalize_id(g.id) == wanted), None)
    if group is None:
        raise SimSoapFault(f"unknown group id {wanted}")
    return group
