"""The SERI dialect's reading: each module event as the document's, answers of
``seri_endpoint.php``, and the client's never-ring-twice rule on each kind of failure."""

from __future__ import annotations

import httpx
import pytest

from callbridge.settings import PbxSettings, SeriSettings
from callbridge.voispeed.events import (
    CallAnswered,
    CallIncoming,
    CallLocalHangup,
    CallOutgoing,
    CallRejected,
    CallRemoteHangup,
    EventParseError,
    UnknownEvent,
    parse_event,
)
from callbridge.voispeed.seri import (
    SeriAnswerError,
    command_failure,
    is_seri,
    parse_answer,
    to_document,
    user_call_id,
)
from callbridge.voispeed.seri_client import SeriClient, SeriOutcomeUnknown, SeriRefused
from callbridge.voispeed.soap import SoapTransportError

NAMES = SeriSettings()
TOKEN = "module-token-123"


def _event(**params: str) -> object:
    return parse_event(to_document(params, NAMES))


def test_incoming_call_reads_as_16_with_the_number_dialled_as_group() -> None:
    event = _event(
        event_name="incoming_call", ext="203", number="0612345678", usercallid="4768",
        called="602", extid="", datetime="2026-12-02 10:00:00", token=TOKEN,
    )  # fmt: skip
    assert isinstance(event, CallIncoming)
    assert event.call_id == "000012A0"  # decimal usercallid, as the monitor tables hold it
    assert (event.remote_number, event.ext, event.group) == ("0612345678", "602", "602")
    assert event.params["user_extension"] == "203"
    assert event.params["seri_ext"] == "203" and event.params["datetime"].startswith("2026")
    assert "token" not in event.params


def test_each_call_event_and_who_is_who() -> None:
    common = {"ext": "201", "number": "0612345678", "usercallid": "10"}
    outgoing = _event(event_name="outgoing_call", extid="cb-1", **common)
    assert isinstance(outgoing, CallOutgoing) and outgoing.ext_id == "cb-1"
    assert (outgoing.remote_number, outgoing.local_number) == ("0612345678", "201")
    click = _event(event_name="call_answered", extid="cb-1", **common)
    assert isinstance(click, CallAnswered) and click.callee_number == "0612345678"
    inbound = _event(event_name="call_answered", **common)
    assert isinstance(inbound, CallAnswered) and inbound.callee_number == "201"
    remote = _event(event_name="call_disconnect_in", duration="42", **common)
    assert isinstance(remote, CallRemoteHangup) and remote.params["duration"] == "42"
    local = _event(event_name="call_disconnect_out", **common)
    assert isinstance(local, CallLocalHangup) and local.local_number == "201"
    lost = _event(event_name="lost_call", **common)
    assert isinstance(lost, CallRejected) and not lost.rejection_known  # missed, nobody known


def test_disconnects_that_only_tell_the_direction_end_with_nobody_known() -> None:
    names = SeriSettings(disconnect_says="direction")
    for name in ("call_disconnect_in", "call_disconnect_out"):
        params = {"event_name": name, "ext": "201", "number": "06", "usercallid": "1"}
        event = parse_event(to_document(params, names))
        assert isinstance(event, CallRemoteHangup)
        assert event.params["cb_hangup_unknown"] == "1"


def test_unknown_names_and_cmd_failed_are_kept_whole() -> None:
    parked = _event(event_name="call_parked", slot="7", ext="201")
    assert isinstance(parked, UnknownEvent) and parked.ssn_event == -1
    assert parked.params["slot"] == "7" and parked.params["cb_seri_event"] == "call_parked"
    failed = to_document(
        {"event_name": "cmd_failed", "extid": "cb-9", "request_id": "77",
         "error_code": "3", "error_msg": "busy"}, NAMES,
    )  # fmt: skip
    found = command_failure(failed, NAMES)
    assert found is not None and (found.external_id, found.request_id) == ("cb-9", "77")
    assert "[3] busy" in found.error
    assert command_failure(to_document({"event_name": "call_parked"}, NAMES), NAMES) is None


def test_names_are_settings() -> None:
    names = SeriSettings(event_param="evento", incoming_call="chiamata_in", call_id_param="id")
    pairs = [("evento", "chiamata_in"), ("ext", "201"), ("number", "06"), ("id", "5")]
    assert is_seri(pairs, names) and not is_seri(pairs, NAMES)
    assert isinstance(parse_event(to_document(pairs, names)), CallIncoming)
    assert not is_seri([("ssn_event", "16"), ("event_name", "x")], NAMES)


def test_refusals_name_the_seri_parameter() -> None:
    with pytest.raises(EventParseError, match="usercallid"):
        to_document({"event_name": "incoming_call", "ext": "201"}, NAMES)
    with pytest.raises(EventParseError, match="event_name"):
        to_document({"event_name": " "}, NAMES)
    with pytest.raises(EventParseError, match="ext"):
        to_document([("event_name", "lost_call"), ("ext", "1"), ("ext", "2")], NAMES)


def test_user_call_id_forms() -> None:
    assert user_call_id("4768", "decimal") == "000012A0"
    assert user_call_id("12a0", "hex") == "000012A0"
    odd = user_call_id("call-7f3e-uuid", "decimal")
    assert odd == user_call_id("call-7f3e-uuid", "decimal") and len(odd) == 8
    assert user_call_id("99999999999", "decimal") != user_call_id("99999999998", "decimal")


def test_answers() -> None:
    ok = parse_answer(b"<r><outcome>0</outcome><request_id>55</request_id></r>", NAMES)
    assert ok.ok and ok.request_id == "55"
    no = parse_answer(b"<r><outcome>2</outcome><error_msg>no ext</error_msg></r>", NAMES)
    assert not no.ok and "no ext" in no.error
    for body in (b"", b"OK", b"<html><p>OK</p></html>"):
        with pytest.raises(SeriAnswerError):
            parse_answer(body, NAMES)
    hostile = b'<!DOCTYPE r [<!ENTITY x "y">]><r><outcome>&x;</outcome></r>'
    with pytest.raises(SeriAnswerError):
        parse_answer(hostile, NAMES)


# -- the client's rule -------------------------------------------------------------------------


def _client(handler: object, attempts: int = 3) -> tuple[SeriClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request, len(seen))  # type: ignore[operator, no-any-return]

    settings = PbxSettings(
        seri_url="http://pbx.example/PBX/seri_endpoint.php",
        seri_token=TOKEN,
        retry_attempts=attempts,
    )
    client = SeriClient(settings, transport=httpx.MockTransport(respond), sleep=lambda _: None)
    return client, seen


ACCEPTED = b"<response><outcome>0</outcome><request_id>9</request_id></response>"


def test_call_request_sends_extid_and_keeps_request_id() -> None:
    client, seen = _client(lambda r, n: httpx.Response(200, content=ACCEPTED))
    placed = client.call_request("201", "0612345678", external_id="cb-1", device="000012A0")
    assert (placed.external_id, placed.request_id) == ("cb-1", "9")
    query = dict(seen[0].url.params)
    assert query == {
        "service": "call_request", "token": TOKEN, "ext": "201", "number": "0612345678",
        "extid": "cb-1", "device": "000012A0",
    }  # fmt: skip
    assert TOKEN not in repr(client)


def test_never_reached_is_retried() -> None:
    def handler(request: httpx.Request, n: int) -> httpx.Response:
        if n < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, content=ACCEPTED)

    client, seen = _client(handler)
    assert client.call_request("201", "06", external_id="cb-2").request_id == "9"
    assert len(seen) == 3


@pytest.mark.parametrize(
    "failure",
    ["read_timeout", "http_503", "html_200", "empty_200"],
)
def test_a_call_request_that_may_have_acted_is_never_sent_twice(failure: str) -> None:
    def handler(request: httpx.Request, n: int) -> httpx.Response:
        if failure == "read_timeout":
            raise httpx.ReadTimeout("slow", request=request)
        if failure == "http_503":
            return httpx.Response(503)
        return httpx.Response(200, content=b"<html>OK</html>" if failure == "html_200" else b"")

    client, seen = _client(handler)
    with pytest.raises(SeriOutcomeUnknown) as caught:
        client.call_request("201", "06", external_id="cb-3")
    assert len(seen) == 1
    assert caught.value.external_id == "cb-3" and TOKEN not in str(caught.value)


def test_refusals() -> None:
    client, _ = _client(lambda r, n: httpx.Response(403))
    with pytest.raises(SeriRefused):
        client.call_request("201", "06", external_id="cb-4")
    body = b"<r><outcome>1</outcome><error_msg>token non valido</error_msg></r>"
    client, _ = _client(lambda r, n: httpx.Response(200, content=body))
    with pytest.raises(SeriRefused, match="token non valido"):
        client.call_request("201", "06", external_id="cb-5")


def test_a_read_only_service_is_retried_and_then_gives_up() -> None:
    client, seen = _client(lambda r, n: httpx.Response(502), attempts=2)
    with pytest.raises(SoapTransportError):
        client.user_call_report()
    assert len(seen) == 2
