"""Refusals: bad credentials, unknown ids, malformed and hostile XML all get a SOAP Fault."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from callbridge.settings import PbxSettings
from callbridge.sim import MemorySink, Simulator
from callbridge.sim.soap_server import parse_request
from callbridge.voispeed.envelope import SoapFault
from callbridge.voispeed.soap import SoapClient

ENV = "http://www.w3.org/2001/12/soap-envelope"
GOOD_HASH = "a1e7ae0d23a8bb8b6e6e5b3cc67ab5b4"  # not the sample password's hash


def envelope(body: str, user: str = "auth-callbridge@acme", md5: str | None = None) -> bytes:
    from callbridge.sim import md5_hex

    digest = md5 if md5 is not None else md5_hex("callbridge")
    return (
        f'<soap:Envelope xmlns:soap="{ENV}" xmlns:vspbx="urn:vspbx" '
        'soap:encodingStyle="http://www.w3.org/2001/12/soap-encoding">'
        f"<soap:Header><username>{user}</username><password>{digest}</password></soap:Header>"
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def post(sim: Simulator, body: bytes) -> httpx.Response:
    return httpx.post(sim.url, content=body, headers={"Content-Type": "text/xml"})


def fault_text(response: httpx.Response) -> str:
    assert response.status_code == 500
    assert b"<faultcode>soap:Client</faultcode>" in response.content
    start = response.text.index("<faultstring>") + len("<faultstring>")
    return response.text[start : response.text.index("</faultstring>")]


def test_wrong_password_hash_is_refused(sim: Simulator, sink: MemorySink) -> None:
    settings = sim.settings.model_copy(
        update={
            "soap_url": sim.url,
            "user": "auth-callbridge@acme",
            "password_md5": SecretStr(GOOD_HASH),
        }
    )
    with SoapClient(settings, sleep=lambda _s: None) as client, pytest.raises(SoapFault) as info:
        client.call_req("auth-mario@acme", "0612345678")
    assert "authentication failed" in info.value.text
    assert GOOD_HASH not in str(info.value)
    assert sink.events == []
    assert sim.calls == []
    assert sim.soap_log[-1].fault is not None
    assert GOOD_HASH not in repr(sim.soap_log)


def test_unknown_header_user_is_refused(sim: Simulator) -> None:
    response = post(
        sim,
        envelope(
            "<vspbx:CallReq><param1>auth-mario@acme</param1>"
            "<call_req_number>1</call_req_number></vspbx:CallReq>",
            user="auth-nobody@acme",
        ),
    )
    assert "authentication failed" in fault_text(response)


def test_unknown_user_call_id(sim: Simulator, client: SoapClient) -> None:
    with pytest.raises(SoapFault, match="unknown user call id 0000BEEF"):
        client.call_hold("auth-mario@acme", "0000BEEF")


def test_call_of_another_user_is_refused(sim: Simulator, client: SoapClient) -> None:
    call = sim.incoming_call("+390612345678", "201")
    with pytest.raises(SoapFault, match="does not belong"):
        client.call_accept("auth-giulia@acme", call.legs[0].user_call_id)
    assert call.legs[0].answered is False


def test_unknown_param1_user(sim: Simulator, client: SoapClient) -> None:
    with pytest.raises(SoapFault, match="unknown user"):
        client.call_req("auth-ghost@acme", "0612345678")


def test_wrong_state_is_a_fault(sim: Simulator, client: SoapClient, sink: MemorySink) -> None:
    call = sim.incoming_call("+390612345678", "201")
    with pytest.raises(SoapFault, match="is ringing, not held"):
        client.call_retrieve("auth-mario@acme", call.legs[0].user_call_id)
    with pytest.raises(SoapFault, match="answered call"):
        client.call_rec_start("auth-mario@acme", call.legs[0].user_call_id)
    with pytest.raises(SoapFault, match="not a device of"):
        client.call_device_switch("auth-mario@acme", call.legs[0].user_call_id, "000012A2")
    assert [e["ssn_event"] for e in sink.events] == ["16"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty request body"),
        (b"<not-closed", "malformed XML"),
        (b"<a/>", "root element must be Envelope"),
        (envelope(""), "exactly one command"),
        (envelope("<vspbx:CallFly><param1>x</param1></vspbx:CallFly>"), "unknown command"),
        (envelope("<other:CallReq xmlns:other='urn:x'/>"), "namespace urn:vspbx"),
        (
            envelope("<vspbx:CallReq><param1>auth-mario@acme</param1></vspbx:CallReq>"),
            "missing call_req_number",
        ),
        (
            envelope(
                "<vspbx:CallAccept><param1>auth-mario@acme</param1><param2>1</param2>"
                "<param3>x</param3></vspbx:CallAccept>"
            ),
            "has no element 'param3'",
        ),
        (
            envelope(
                "<vspbx:CallAccept><param1>auth-mario@acme</param1><param2>xyz!</param2>"
                "</vspbx:CallAccept>"
            ),
            "bad user call id",
        ),
        (
            envelope(
                "<vspbx:CallReq><param1>auth-mario@acme</param1><call_req_number>1"
                "</call_req_number><call_req_ext_id>not valid!</call_req_ext_id></vspbx:CallReq>"
            ),
            "external id may contain only",
        ),
        (
            envelope(
                "<vspbx:CRUDevent><crud_event_action>9</crud_event_action>"
                "<crud_event_entity_type>2</crud_event_entity_type></vspbx:CRUDevent>"
            ),
            "not a valid CrudAction",
        ),
        (
            f'<soap:Envelope xmlns:soap="{ENV}"><soap:Body/></soap:Envelope>'.encode(),
            "missing soap:Header",
        ),
    ],
)
def test_malformed_bodies_are_faults(
    sim: Simulator, sink: MemorySink, body: bytes, reason: str
) -> None:
    response = post(sim, body)
    assert reason in fault_text(response)
    assert sink.events == []
    assert sim.calls == []


def test_xxe_is_refused_and_no_file_is_read(sim: Simulator, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file://{secret}">]>'
        + envelope(
            "<vspbx:CallReq><param1>auth-mario@acme</param1>"
            "<call_req_number>&x;</call_req_number></vspbx:CallReq>"
        ).decode()
    ).encode()
    response = post(sim, body)
    assert "forbidden XML construct" in fault_text(response)
    assert "TOPSECRET" not in response.text
    assert sim.calls == []


def test_entity_expansion_is_refused(sim: Simulator) -> None:
    body = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        + envelope("<vspbx:CallReq><param1>&b;</param1></vspbx:CallReq>").decode()
    ).encode()
    assert "forbidden XML construct" in fault_text(post(sim, body))


def test_other_methods_and_paths(sim: Simulator) -> None:
    assert httpx.get(sim.url).status_code == 405
    base = sim.url.rsplit("/", 1)[0]
    assert httpx.post(base + "/elsewhere", content=b"<x/>").status_code == 404


def test_same_settings_on_both_sides(sink: MemorySink) -> None:
    """Custom namespaces, header names and credentials configured once serve both sides."""
    settings = PbxSettings(
        namespace="http://voispeed.example/vspbx",
        header_user_element="user",
        header_password_element="pass",
        user="auth-crm@acme",
        password=SecretStr("s3cret"),
        soap_url="http://127.0.0.1:1/pbx/soap",
    )
    with Simulator(sink=sink, settings=settings, queue_events=False) as sim:
        assert sim.url.endswith("/pbx/soap")
        client_settings = settings.model_copy(update={"soap_url": sim.url})
        with SoapClient(client_settings) as client:
            result = client.call_req("auth-mario@acme", "0612345678", external_id="cb-1")
        assert result.values["external_id"] == "cb-1"
        # the default header names and namespace are now refused
        request = envelope(
            "<vspbx:CallReq><param1>auth-mario@acme</param1>"
            "<call_req_number>1</call_req_number></vspbx:CallReq>"
        )
        assert "the header must carry user and pass" in fault_text(post(sim, request))


def test_parse_request_never_keeps_the_hash_in_repr() -> None:
    from callbridge.sim import md5_hex

    request = parse_request(
        envelope("<vspbx:CallHold><param1>a</param1><param2>1</param2></vspbx:CallHold>"),
        PbxSettings(),
    )
    assert md5_hex("callbridge") not in repr(request)
