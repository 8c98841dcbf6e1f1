"""The envelopes of all 13 commands, against golden files and the document's element names.

Regenerate the golden files after an intended change with
``CALLBRIDGE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/voispeed/test_soap_envelope.py``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from defusedxml.ElementTree import fromstring
from hypothesis import given
from hypothesis import strategies as st

from callbridge.errors import ConfigurationError
from callbridge.settings import PbxSettings
from callbridge.voispeed import (
    CallableType,
    CrudAction,
    CrudEntityType,
    GatewayType,
    InvalidRequest,
    SoapRequest,
    build_envelope,
)
from callbridge.voispeed import envelope as env

GOLDEN = Path(__file__).parent / "golden"
SOAP = "http://www.w3.org/2001/12/soap-envelope"
VSPBX = "urn:vspbx"
MD5 = "0123456789abcdef0123456789abcdef"
SETTINGS = PbxSettings(user="auth-integration@acme", password_md5=MD5)
USER = "auth-mario@acme"

#: One request per command, with fixed external ids so the output is stable.
REQUESTS: dict[str, SoapRequest] = {
    "CallReq": env.call_req(USER, "0612345678", "000012A0", "cb-golden-1"),
    "CallReqExt": env.call_req_ext(
        USER,
        calling_id="00000010",
        called_id="00000020",
        calling_type=CallableType.USER,
        called_type=CallableType.GATEWAY,
        calling_number="201",
        called_number="+390612345678",
        device_id="000012A0",
        external_id="cb-golden-2",
        record=True,
    ),
    "CallAccept": env.call_accept(USER, "000012A1"),
    "CallHold": env.call_hold(USER, "000012A1"),
    "CallRetrieve": env.call_retrieve(USER, "000012A1"),
    "CallDivert": env.call_divert(USER, "000012A1", "202"),
    "CallTransfer": env.call_transfer(USER, "000012A1", "000012A2"),
    "CallDisconnect": env.call_disconnect(USER, "000012A1"),
    "CallDeviceSwitch": env.call_device_switch(USER, "000012A1", "000012B0"),
    "CallPick": env.call_pick(USER, "203", "000012A0"),
    "CallRecStart": env.call_rec_start(USER, "000012A1"),
    "CallRecStop": env.call_rec_stop(USER, "000012A1"),
    "CRUDevent": env.crud_event(
        CrudAction.UPDATE, CrudEntityType.GATEWAY, GatewayType.ISDN, "00000004"
    ),
}

#: The children of each command, as the vendor's document prints them (optional ones included).
DOCUMENT: dict[str, list[str]] = {
    "CallReq": ["param1", "call_req_number", "call_req_device_id", "call_req_ext_id"],
    "CallReqExt": [
        "param1",
        "call_request_calling_id",
        "call_request_called_id",
        "call_request_calling_type",
        "call_request_called_type",
        "call_request_calling_number",
        "call_request_called_number",
        "call_request_external_id",
        "call_request_device_id",
        "call_request_to_be_rec",
    ],
    "CallAccept": ["param1", "param2"],
    "CallHold": ["param1", "param2"],
    "CallRetrieve": ["param1", "param2"],
    "CallDivert": ["param1", "call_divert_callid", "call_divert_recipient"],
    "CallTransfer": ["param1", "call_transfer_callidfrom", "call_transfer_callidto"],
    "CallDisconnect": ["param1", "param2"],
    "CallDeviceSwitch": ["param1", "param2", "call_device_switch_id"],
    "CallPick": ["param1", "call_pick_number", "call_pick_device_id"],
    "CallRecStart": ["param1", "param2"],
    "CallRecStop": ["param1", "param2"],
    "CRUDevent": [
        "crud_event_action",
        "crud_event_entity_type",
        "crud_event_entity_subtype",
        "crud_event_entity_id",
    ],
}


def _body_command(data: bytes) -> ET.Element:
    root = fromstring(data)
    assert root.tag == f"{{{SOAP}}}Envelope"
    body = root.find(f"{{{SOAP}}}Body")
    assert body is not None
    (command,) = list(body)
    return command


def test_every_command_is_covered() -> None:
    assert set(REQUESTS) == set(env.COMMANDS) == set(DOCUMENT)


@pytest.mark.parametrize("command", env.COMMANDS)
def test_golden_envelope(command: str) -> None:
    request = REQUESTS[command]
    data = build_envelope(SETTINGS, request.command, request.fields)
    path = GOLDEN / f"{command}.xml"
    if os.environ.get("CALLBRIDGE_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(data + b"\n")
    assert data + b"\n" == path.read_bytes()


@pytest.mark.parametrize("command", env.COMMANDS)
def test_envelope_uses_the_document_names(command: str) -> None:
    """Independent of the golden files: element names and order as in the vendor's text."""
    data = (GOLDEN / f"{command}.xml").read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope ')
    root = fromstring(data)
    assert root.get(f"{{{SOAP}}}encodingStyle") == "http://www.w3.org/2001/12/soap-encoding"
    header = root.find(f"{{{SOAP}}}Header")
    assert header is not None
    assert [(c.tag, c.text) for c in header] == [
        ("username", "auth-integration@acme"),
        ("password", MD5),
    ]
    element = _body_command(data)
    assert element.tag == f"{{{VSPBX}}}{command}"
    names = [child.tag for child in element]
    assert names == [n for n in DOCUMENT[command] if n in names]  # document order
    assert all("}" not in name for name in names)  # unqualified, as in the document
    # Everything the document lists is present here (the golden requests fill every option).
    assert names == DOCUMENT[command]


def test_values_of_the_golden_requests() -> None:
    values = {c.tag: c.text for c in _body_command((GOLDEN / "CallReqExt.xml").read_bytes())}
    assert values["call_request_calling_type"] == "0"
    assert values["call_request_called_type"] == "2"
    assert values["call_request_to_be_rec"] == "1"
    assert values["call_request_external_id"] == "cb-golden-2"
    crud = {c.tag: c.text for c in _body_command((GOLDEN / "CRUDevent.xml").read_bytes())}
    assert crud == {
        "crud_event_action": "3",
        "crud_event_entity_type": "4",
        "crud_event_entity_subtype": "2",
        "crud_event_entity_id": "00000004",
    }


def test_optional_elements_are_left_out() -> None:
    request = env.call_req(USER, "0612345678")
    names = [name for name, _ in request.fields]
    assert names == ["param1", "call_req_number", "call_req_ext_id"]
    assert request.external_id is not None
    assert request.external_id.startswith("cb-")
    assert len(request.external_id) <= 40
    crud = env.crud_event(CrudAction.CREATE, CrudEntityType.USER, None, 0x12A0)
    assert dict(crud.fields) == {
        "crud_event_action": "1",
        "crud_event_entity_type": "2",
        "crud_event_entity_id": "000012A0",
    }


@pytest.mark.parametrize("value", ["<", "&", "]]>", '"', "'", "a<b&c]]>d\"e'f", "<![CDATA[x]]>"])
def test_special_characters_stay_text(value: str) -> None:
    data = build_envelope(SETTINGS, "CallHold", [("param1", value), ("param2", "000012A1")])
    assert b"<![CDATA[" not in data
    assert b"]]>" not in data
    element = _body_command(data)
    assert element.find("param1") is not None
    assert element.findtext("param1") == value
    assert len(list(element)) == 2  # nothing injected


def test_a_user_with_markup_is_one_text_node() -> None:
    request = env.call_accept("auth-x</param1><param2>00000001</param2>@acme", "000012A1")
    element = _body_command(build_envelope(SETTINGS, request.command, request.fields))
    assert [c.tag for c in element] == ["param1", "param2"]
    assert element.findtext("param2") == "000012A1"


_XML_SAFE = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="\r",
        min_codepoint=0x20,
    )
    | st.sampled_from("\t\n<>&'\"]"),
    max_size=80,
)


@given(_XML_SAFE)
def test_any_text_round_trips(value: str) -> None:
    if value.strip() == "" or "\ufffe" in value or "\uffff" in value:
        return
    data = build_envelope(SETTINGS, "CallHold", [("param1", value)])
    assert _body_command(data).findtext("param1") == value.strip()


def test_control_characters_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="param1"):
        env.call_hold("auth-\x00@acme", "000012A1")
    with pytest.raises(InvalidRequest, match="param1"):
        build_envelope(SETTINGS, "CallHold", [("param1", "a\x1bb")])


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: env.call_req(USER, "06 not a number"), "call_req_number"),
        (lambda: env.call_req(USER, ""), "call_req_number"),
        (lambda: env.call_req(USER, "0612", "XYZ"), "call_req_device_id"),
        (lambda: env.call_req(USER, "0612", None, "bad id with spaces"), "call_req_ext_id"),
        (lambda: env.call_req(USER, "0612", None, "x" * 41), "call_req_ext_id"),
        (lambda: env.call_req("", "0612"), "param1"),
        (lambda: env.call_hold(USER, "123456789"), "param2"),
        (lambda: env.call_divert(USER, "1", "<202>"), "call_divert_recipient"),
        (lambda: env.call_transfer(USER, "1", "g"), "call_transfer_callidto"),
        (lambda: env.call_pick(USER, "203", ""), "call_pick_device_id"),
        (lambda: env.crud_event(9, CrudEntityType.USER, None, 1), "crud_event_action"),
        (lambda: env.crud_event(1, CrudEntityType.GATEWAY, None, 1), "crud_event_entity_subtype"),
        (lambda: env.crud_event(1, CrudEntityType.USER, 0, 1), "crud_event_entity_subtype"),
        (
            lambda: env.call_req_ext(
                USER, calling_id=1, called_id=2, calling_type=12, called_type=0
            ),
            "call_request_calling_type",
        ),
    ],
)
def test_bad_arguments_name_the_element(build: object, field: str) -> None:
    assert callable(build)
    with pytest.raises(InvalidRequest) as info:
        build()
    assert info.value.field == field
    assert field in str(info.value)


def test_numbers_and_ids_are_normalised() -> None:
    request = env.call_req(USER, " +39 06-1234.5678 ", "12a0")
    assert dict(request.fields)["call_req_number"] == "+390612345678"
    assert dict(request.fields)["call_req_device_id"] == "000012A0"
    assert dict(env.call_transfer(USER, 0x12A1, "12a2").fields)["call_transfer_callidfrom"] == (
        "000012A1"
    )


def test_mask_password() -> None:
    data = build_envelope(SETTINGS, "CallHold", [("param1", USER)], mask_password=True)
    assert MD5.encode() not in data
    assert b"<password>********</password>" in data


def test_plain_password_is_hashed() -> None:
    settings = PbxSettings(user="auth-i@acme", password="secret")
    data = build_envelope(settings, "CallHold", [("param1", USER)])
    assert b"<password>5ebe2294ecd0e0f08eab7690d2a6ee69</password>" in data
    assert b"secret<" not in data


def test_settings_shape_the_envelope() -> None:
    settings = PbxSettings(
        user="auth-i@acme",
        password_md5=MD5,
        namespace="http://voispeed.example/pbx",
        envelope_namespace="http://schemas.xmlsoap.org/soap/envelope/",
        header_user_element="user",
        header_password_element="pwd",
        soap_action='"{namespace}/{command}"',
    )
    data = build_envelope(settings, "CallHold", [("param1", USER)])
    root = fromstring(data)
    assert root.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Envelope"
    header = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Header")
    assert header is not None
    assert [c.tag for c in header] == ["user", "pwd"]
    assert b"<vspbx:CallHold>" in data
    assert env.soap_action(settings, "CallHold") == '"http://voispeed.example/pbx/CallHold"'


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"user": None}, "CALLBRIDGE_PBX__USER"),
        ({"password_md5": None}, "CALLBRIDGE_PBX__PASSWORD_MD5"),
        ({"header_user_element": "First name"}, "CALLBRIDGE_PBX__HEADER_USER_ELEMENT"),
        ({"header_password_element": "<pw>"}, "CALLBRIDGE_PBX__HEADER_PASSWORD_ELEMENT"),
        ({"soap_action": "{nope}"}, "CALLBRIDGE_PBX__SOAP_ACTION"),
    ],
)
def test_unusable_settings_name_the_variable(overrides: dict[str, object], variable: str) -> None:
    values: dict[str, object] = {"user": "auth-i@acme", "password_md5": MD5, **overrides}
    settings = PbxSettings.model_validate(values)
    with pytest.raises(ConfigurationError, match=variable):
        env.check_settings(settings)
    if "soap_action" not in overrides:
        with pytest.raises(ConfigurationError, match=variable):
            build_envelope(settings, "CallHold", [("param1", USER)])
