"""The SOAP client against a real local HTTP server, and the retry rule (requests counted)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from defusedxml.ElementTree import fromstring
from pbx_soap_server import PASSWORD, Reply, SoapServer, fault11, response

from callbridge.errors import ConfigurationError
from callbridge.settings import PbxSettings
from callbridge.voispeed import (
    SAFE_TO_REPEAT,
    CallableType,
    CrudAction,
    CrudEntityType,
    GatewayType,
    SoapClient,
    SoapFault,
    SoapHttpError,
    SoapOutcomeUnknown,
    SoapResponseError,
    SoapTransportError,
)
from callbridge.voispeed import envelope as env

PASSWORD_HASH = hashlib.md5(PASSWORD.encode()).hexdigest()
USER = "auth-mario@acme"
SOAP = "http://www.w3.org/2001/12/soap-envelope"

#: One call per command: (command name, how to call it on a client).
CALLS: list[tuple[str, Callable[[SoapClient], Any]]] = [
    ("CallReq", lambda c: c.call_req(USER, "0612345678", "000012A0")),
    (
        "CallReqExt",
        lambda c: c.call_req_ext(
            USER,
            calling_id="0000000A",
            called_id="00000014",
            calling_type=CallableType.USER,
            called_type=CallableType.USER,
            calling_number="201",
            called_number="202",
        ),
    ),
    ("CallAccept", lambda c: c.call_accept(USER, "000012A1")),
    ("CallHold", lambda c: c.call_hold(USER, "000012A1")),
    ("CallRetrieve", lambda c: c.call_retrieve(USER, "000012A1")),
    ("CallDivert", lambda c: c.call_divert(USER, "000012A1", "202")),
    ("CallTransfer", lambda c: c.call_transfer(USER, "000012A1", "000012A2")),
    ("CallDisconnect", lambda c: c.call_disconnect(USER, "000012A1")),
    ("CallDeviceSwitch", lambda c: c.call_device_switch(USER, "000012A1", "000012B0")),
    ("CallPick", lambda c: c.call_pick(USER, "203", "000012A0")),
    ("CallRecStart", lambda c: c.call_rec_start(USER, "000012A1")),
    ("CallRecStop", lambda c: c.call_rec_stop(USER, "000012A1")),
    (
        "CRUDevent",
        lambda c: c.crud_event(CrudAction.READ, CrudEntityType.GATEWAY, GatewayType.VOIP, 4),
    ),
]
ACTING = [(name, call) for name, call in CALLS if name not in SAFE_TO_REPEAT]
SAFE = [(name, call) for name, call in CALLS if name in SAFE_TO_REPEAT]


def _client(settings: PbxSettings, **kwargs: Any) -> SoapClient:
    kwargs.setdefault("sleep", lambda _seconds: None)
    kwargs.setdefault("backoff_initial", 0.01)
    return SoapClient(settings, **kwargs)


def test_call_req_success(soap_server: SoapServer) -> None:
    soap_server.default = Reply(body=response("CallReq", user_call_id="000012A1"))
    with _client(soap_server.settings()) as client:
        result = client.call_req(USER, "06 1234 5678", "12a0")
    assert result.command == "CallReq"
    assert result.user_call_id == "000012A1"
    assert result.external_id.startswith("cb-")
    (seen,) = soap_server.seen
    assert seen.path == "/soap"
    assert seen.headers["content-type"] == "text/xml; charset=utf-8"
    assert seen.headers["soapaction"] == "urn:vspbx#CallReq"
    root = fromstring(seen.raw)
    command = root.find(f"{{{SOAP}}}Body/{{urn:vspbx}}CallReq")
    assert command is not None
    assert command.findtext("call_req_ext_id") == result.external_id
    assert command.findtext("call_req_number") == "0612345678"
    assert command.findtext("call_req_device_id") == "000012A0"
    assert root.findtext(f"{{{SOAP}}}Header/password") == PASSWORD_HASH


def test_given_external_id_is_sent(soap_server: SoapServer) -> None:
    with _client(soap_server.settings()) as client:
        result = client.call_req(USER, "201", external_id="crm-42.abc")
    assert result.external_id == "crm-42.abc"
    assert b"<call_req_ext_id>crm-42.abc</call_req_ext_id>" in soap_server.seen[0].raw


@pytest.mark.parametrize(("command", "call"), CALLS, ids=[name for name, _ in CALLS])
def test_every_command_reaches_the_server(
    soap_server: SoapServer, command: str, call: Callable[[SoapClient], Any]
) -> None:
    soap_server.default = Reply(body=response(command, result="ok"))
    with _client(soap_server.settings()) as client:
        result = call(client)
    assert result.command == command
    assert result.values == {"result": "ok"}
    (seen,) = soap_server.seen
    assert seen.headers["soapaction"] == f"urn:vspbx#{command}"
    assert fromstring(seen.raw).find(f"{{{SOAP}}}Body/{{urn:vspbx}}{command}") is not None


@pytest.mark.parametrize("status", [200, 500])
def test_fault_is_typed_and_not_retried(soap_server: SoapServer, status: int) -> None:
    soap_server.default = Reply(status=status, body=fault11("soap:Client", "no such call"))
    with _client(soap_server.settings()) as client, pytest.raises(SoapFault) as info:
        client.call_hold(USER, "000012A1")  # a safe command: still not retried
    assert (info.value.code, info.value.text) == ("soap:Client", "no such call")
    assert soap_server.count == 1


def test_fault_echoing_the_hash_is_scrubbed(soap_server: SoapServer) -> None:
    soap_server.default = Reply(
        status=500, body=fault11("Auth", f"bad password {PASSWORD_HASH.upper()} for user")
    )
    with _client(soap_server.settings()) as client, pytest.raises(SoapFault) as info:
        client.call_req(USER, "201")
    assert PASSWORD_HASH not in str(info.value).lower()
    assert "bad password ******** for user" in info.value.text


def test_http_4xx_is_typed_and_not_retried(soap_server: SoapServer) -> None:
    soap_server.default = Reply(
        status=404, body=b"<html>not found</html>", content_type="text/html"
    )
    with _client(soap_server.settings()) as client, pytest.raises(SoapHttpError) as info:
        client.call_disconnect(USER, "1")
    assert info.value.status == 404
    assert soap_server.count == 1


def test_hostile_answer_from_the_server(soap_server: SoapServer) -> None:
    soap_server.default = Reply(
        body=b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    )
    with _client(soap_server.settings()) as client, pytest.raises(SoapResponseError):
        client.call_hold(USER, "1")


# --- the retry rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "call"), ACTING, ids=[name for name, _ in ACTING])
def test_acting_command_after_5xx_is_sent_once(
    soap_server: SoapServer, command: str, call: Callable[[SoapClient], Any]
) -> None:
    soap_server.default = Reply(status=503, body=b"busy", content_type="text/plain")
    with _client(soap_server.settings()) as client, pytest.raises(SoapOutcomeUnknown) as info:
        call(client)
    assert soap_server.count == 1
    assert info.value.command == command
    assert info.value.status == 503


def test_call_req_after_read_timeout_is_sent_once(soap_server: SoapServer) -> None:
    soap_server.default = Reply(hang=True)
    settings = soap_server.settings(read_timeout=0.3)
    with _client(settings) as client, pytest.raises(SoapOutcomeUnknown) as info:
        client.call_req(USER, "0612345678", external_id="cb-timeout-1")
    assert soap_server.count == 1
    assert info.value.external_id == "cb-timeout-1"
    assert "cb-timeout-1" in str(info.value)
    assert "ReadTimeout" in str(info.value)


def test_call_req_ext_after_dropped_connection_is_sent_once(soap_server: SoapServer) -> None:
    soap_server.default = Reply(drop=True)
    with _client(soap_server.settings()) as client, pytest.raises(SoapOutcomeUnknown):
        client.call_req_ext(
            USER, calling_id=1, called_id=2, calling_type=0, called_type=0, record=True
        )
    assert soap_server.count == 1


@pytest.mark.parametrize(("command", "call"), SAFE, ids=[name for name, _ in SAFE])
def test_safe_command_is_retried_after_5xx(
    soap_server: SoapServer, command: str, call: Callable[[SoapClient], Any]
) -> None:
    soap_server.script = [Reply(status=502), Reply(status=503)]
    soap_server.default = Reply(body=response(command, result="ok"))
    with _client(soap_server.settings(retry_attempts=3)) as client:
        assert call(client).values == {"result": "ok"}
    assert soap_server.count == 3


def test_safe_command_gives_up_after_the_bound(soap_server: SoapServer) -> None:
    soap_server.default = Reply(status=500)
    with (
        _client(soap_server.settings(retry_attempts=4)) as client,
        pytest.raises(SoapHttpError) as info,
    ):
        client.call_disconnect(USER, "000012A1")
    assert info.value.status == 500
    assert soap_server.count == 4


def test_safe_command_is_retried_after_read_timeout(soap_server: SoapServer) -> None:
    soap_server.script = [Reply(hang=True)]
    soap_server.default = Reply(body=response("CallHold"))
    with _client(soap_server.settings(read_timeout=0.3)) as client:
        client.call_hold(USER, "000012A1")
    assert soap_server.count == 2


def test_refused_connection_is_retried_until_the_pbx_comes_up(
    closed_port_server: SoapServer,
) -> None:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:  # two refused attempts, then the PBX is up
            closed_port_server.start()

    closed_port_server.default = Reply(body=response("CallReq", user_call_id="00000001"))
    settings = closed_port_server.settings(retry_attempts=5)
    with _client(settings, sleep=sleep) as client:
        result = client.call_req(USER, "0612345678")
    assert result.user_call_id == "00000001"
    assert closed_port_server.count == 1  # only the attempt that connected reached it
    assert len(sleeps) == 2


def test_refused_connection_gives_up_after_the_bound(closed_port_server: SoapServer) -> None:
    sleeps: list[float] = []
    settings = closed_port_server.settings(retry_attempts=3)
    with (
        _client(settings, sleep=sleeps.append) as client,
        pytest.raises(SoapTransportError) as info,
    ):
        client.call_req(USER, "0612345678")
    assert len(sleeps) == 2  # three attempts
    assert "cannot reach the PBX" in str(info.value)
    assert "ConnectError" in str(info.value)


def test_backoff_grows_and_respects_the_time_bound(closed_port_server: SoapServer) -> None:
    sleeps: list[float] = []
    settings = closed_port_server.settings(retry_attempts=10, retry_max_seconds=3.0)
    client = _client(settings, sleep=sleeps.append, backoff_initial=1.0, backoff_max=60.0)
    with client, pytest.raises(SoapTransportError):
        client.call_hold(USER, "1")
    # Exponential with up to 1 s of jitter: 1-2, 2-3, 4-5, ... Only sleeps that end before
    # the 3 s bound are taken (the fake sleep does not advance the clock), so at most two.
    assert 1 <= len(sleeps) <= 2
    assert all(s < 3.0 for s in sleeps)
    assert sleeps == sorted(sleeps)


def _mock(exc: Exception, calls: list[int]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise exc

    return httpx.MockTransport(handler)


NEVER_SENT = [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("x")]
MAYBE_SENT = [
    httpx.ReadTimeout("slow"),
    httpx.WriteTimeout("slow"),
    httpx.ReadError("reset"),
    httpx.WriteError("reset"),
    httpx.RemoteProtocolError("closed"),
]
SETTINGS = PbxSettings(
    soap_url="http://pbx.invalid/soap",
    user="auth-i@acme",
    password=PASSWORD,
    retry_attempts=3,
)


@pytest.mark.parametrize("exc", NEVER_SENT, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize(("command", "call"), CALLS, ids=[name for name, _ in CALLS])
def test_rule_never_sent_is_retried_for_every_command(
    exc: Exception, command: str, call: Callable[[SoapClient], Any]
) -> None:
    calls: list[int] = []
    with (
        _client(SETTINGS, transport=_mock(exc, calls)) as client,
        pytest.raises(SoapTransportError),
    ):
        call(client)
    assert len(calls) == 3


@pytest.mark.parametrize("exc", MAYBE_SENT, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize(("command", "call"), CALLS, ids=[name for name, _ in CALLS])
def test_rule_maybe_sent(exc: Exception, command: str, call: Callable[[SoapClient], Any]) -> None:
    calls: list[int] = []
    with _client(SETTINGS, transport=_mock(exc, calls)) as client:
        if command in SAFE_TO_REPEAT:
            with pytest.raises(SoapTransportError):
                call(client)
            assert len(calls) == 3
        else:
            with pytest.raises(SoapOutcomeUnknown):
                call(client)
            assert len(calls) == 1


def test_the_table_of_safe_commands() -> None:
    assert (
        frozenset({"CallHold", "CallRetrieve", "CallDisconnect", "CallRecStart", "CallRecStop"})
        == SAFE_TO_REPEAT
    )


# --- secrets and settings ---------------------------------------------------------------------


def test_secrets_stay_out_of_repr_errors_and_logs(
    soap_server: SoapServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    soap_server.default = Reply(status=500)
    settings = soap_server.settings(retry_attempts=2)
    client = _client(settings)
    text = repr(client) + repr(settings) + str(settings)
    with client, pytest.raises(SoapHttpError) as info:
        client.call_hold(USER, "1")
    text += str(info.value) + repr(info.value) + caplog.text
    assert "retrying" in caplog.text
    assert PASSWORD_HASH not in text
    assert PASSWORD not in text
    assert "auth-integration@acme" in repr(client)


@pytest.mark.parametrize("url", ["ftp://pbx/soap", "pbx:8080/soap", "http://"])
def test_bad_url_names_the_variable(url: str) -> None:
    settings = PbxSettings(soap_url=url, user="auth-i@acme", password="x")
    with pytest.raises(ConfigurationError, match="CALLBRIDGE_PBX__SOAP_URL"):
        SoapClient(settings)


def test_missing_credentials_name_the_variables() -> None:
    with pytest.raises(ConfigurationError) as info:
        SoapClient(PbxSettings())
    message = str(info.value)
    assert "CALLBRIDGE_PBX__USER" in message
    assert "CALLBRIDGE_PBX__PASSWORD" in message
    assert "CALLBRIDGE_PBX__PASSWORD_MD5" in message


# --- issue 13: an answer the client cannot read is not a refusal ------------------------------

NON_SOAP_200 = [
    pytest.param(b"", "text/xml", id="empty"),
    pytest.param(b"<html><body>OK</body></html>", "text/html", id="html"),
    pytest.param(b"OK", "text/plain", id="ok"),
    pytest.param(b"<result>0</result>", "text/xml", id="bare-result"),
]


@pytest.mark.parametrize(("body", "content_type"), NON_SOAP_200)
@pytest.mark.parametrize("command", ["CallReq", "CallReqExt"])
def test_call_req_answered_200_without_soap_is_unconfirmed(
    soap_server: SoapServer, body: bytes, content_type: str, command: str
) -> None:
    """The PBX may well have placed the call: unknown, never re-sent, never "refused"."""
    soap_server.default = Reply(status=200, body=body, content_type=content_type)
    request = (
        env.call_req(USER, "0612345678", external_id="cb-non-soap-1")
        if command == "CallReq"
        else env.call_req_ext(
            USER, calling_id=1, called_id=2, calling_type=0, called_type=0,
            external_id="cb-non-soap-1",
        )
    )  # fmt: skip
    with _client(soap_server.settings()) as client, pytest.raises(SoapOutcomeUnknown) as info:
        client.send(request)
    assert soap_server.count == 1
    assert info.value.external_id == "cb-non-soap-1"
    assert info.value.status == 200
    assert "not a SOAP answer" in str(info.value)


def test_safe_command_answered_with_an_empty_200_is_done(soap_server: SoapServer) -> None:
    soap_server.default = Reply(status=200, body=b"")
    with _client(soap_server.settings()) as client:
        assert client.call_hold(USER, "000012A1").values == {}
    assert soap_server.count == 1


def test_given_md5_is_sent_as_given(soap_server: SoapServer) -> None:
    """The hash of the ``users`` table is sent byte for byte: a PBX may compare it as text."""
    upper = PASSWORD_HASH.upper()
    settings = soap_server.settings(password=None, password_md5=upper)
    soap_server.default = Reply(status=500, body=fault11("Auth", f"bad password {upper} for user"))
    with _client(settings) as client, pytest.raises(SoapFault) as info:
        client.call_hold(USER, "000012A1")
    assert f"<password>{upper}</password>".encode() in soap_server.seen[0].raw
    assert upper not in str(info.value)
