"""Event parsing from realistic callback query strings, for every ssn_event of the document."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.voispeed import (
    CallableType,
    CallAnswered,
    CallIncoming,
    CallLocalHangup,
    CallOutgoing,
    CallRejected,
    CallRemoteHangup,
    DeviceLogin,
    DeviceLogout,
    DeviceType,
    Direction,
    EventParseError,
    Identity,
    SsnEvent,
    UnknownEvent,
    parse_event,
)
from callbridge.voispeed.events import BaseEvent


def q(query: str) -> list[tuple[str, str]]:
    """Parse a query string as the ingress does (blank values kept)."""
    return parse_qsl(query, keep_blank_values=True, strict_parsing=True)


CALL = (
    "sender_id=00000007&sender_type=0&call_id=000012a1&ext_id=cb-0123abcd"
    "&identity=Mario%7CRossi%7CSales%7C0%7C0&group=Support&company_id=1&token=s3cret"
)


def test_device_login() -> None:
    event = parse_event(
        q(
            "ssn_event=1&device_id=12a0&device_type=2&device_host=192.168.1.50%3A5060"
            "&device_name=Yealink%20SIP-T46S%2066.86&number=201&user_id=00000007&company_id=3"
        )
    )
    assert isinstance(event, DeviceLogin)
    assert event.kind is SsnEvent.DEVICE_LOGIN
    assert event.device_id == "000012A0"
    assert event.device_type is DeviceType.SIP_PHONE
    assert (event.device_ip, event.device_port) == ("192.168.1.50", 5060)
    assert event.device_name == "Yealink SIP-T46S 66.86"
    assert event.number == "201"
    assert event.user_id == "00000007"
    assert event.company_id == "3"


def test_device_logout_of_a_mobile_without_host() -> None:
    event = parse_event(
        q("ssn_event=2&device_id=000012A2&device_type=5&device_host=&device_name=3331234567")
    )
    assert isinstance(event, DeviceLogout)
    assert event.device_type is DeviceType.MOBILE
    assert (event.device_ip, event.device_port) == (None, None)
    assert event.number is None


@pytest.mark.parametrize(
    ("host", "ip", "port"),
    [
        ("10.0.0.5:5062", "10.0.0.5", 5062),
        ("10.0.0.5", "10.0.0.5", None),
        ("[fe80::1]:5060", "fe80::1", 5060),
        ("fe80::1", "fe80::1", None),
        ("pbx-phone.local:5060", "pbx-phone.local", 5060),
    ],
)
def test_device_host_split(host: str, ip: str, port: int | None) -> None:
    event = parse_event({"ssn_event": "1", "device_id": "1", "device_host": host})
    assert isinstance(event, DeviceLogin)
    assert (event.device_ip, event.device_port) == (ip, port)


@pytest.mark.parametrize(
    ("query", "device_type", "ip", "port"),
    [
        ("device_type=9&device_host=1.2.3.4%3A5060", None, "1.2.3.4", 5060),
        ("device_type=sip&device_host=1.2.3.4%3A5060", None, "1.2.3.4", 5060),
        ("device_type=2&device_host=1.2.3.4%3A99999", DeviceType.SIP_PHONE, "1.2.3.4", None),
        ("device_type=2&device_host=1.2.3.4%3Asip", DeviceType.SIP_PHONE, "1.2.3.4:sip", None),
        ("device_type=2&device_host=h%3A%C2%B2", DeviceType.SIP_PHONE, "h:\u00b2", None),
        ("device_type=%D9%A5&device_host=sip%3Auser%40host", None, "sip:user@host", None),
    ],
)
def test_device_fields_no_hook_needs_never_refuse_the_event(
    query: str, device_type: DeviceType | None, ip: str, port: int | None
) -> None:
    """A device type we did not guess, or a port that is not a port: read what we can."""
    event = parse_event(q(f"ssn_event=1&device_id=12a0&number=201&user_id=7&{query}"))
    assert isinstance(event, DeviceLogin)
    assert event.device_type is device_type
    assert (event.device_ip, event.device_port) == (ip, port)
    assert event.number == "201"
    raw = dict(q(query))
    assert event.params["device_type"] == raw["device_type"]  # the raw value is kept
    assert event.device_host == raw["device_host"]


@pytest.mark.parametrize("sender_type", ["99", "x", "\u0665"])
def test_unknown_sender_type_is_kept_raw_not_refused(sender_type: str) -> None:
    params = {"ssn_event": "16", "call_id": "1", "sender_id": "7", "sender_type": sender_type}
    event = parse_event(params)
    assert isinstance(event, CallIncoming)
    assert event.sender_type is None
    assert event.params["sender_type"] == sender_type


def test_incoming_call() -> None:
    event = parse_event(q("ssn_event=16&number=%2B390612345678&ext=201&" + CALL))
    assert isinstance(event, CallIncoming)
    assert event.direction is Direction.INCOMING
    assert event.call_id == "000012A1"
    assert event.ext_id == "cb-0123abcd"
    assert event.sender_id == "00000007"
    assert event.sender_type is CallableType.USER
    assert event.identity == Identity(
        name="Mario", surname="Rossi", department="Sales", p1="0", p2="0"
    )
    assert event.identity is not None
    assert event.identity.display_name == "Mario Rossi"
    assert event.group == "Support"
    assert event.remote_number == "+390612345678"  # number = the caller
    assert event.local_number == "201"  # ext = the number called (our user)


def test_outgoing_call() -> None:
    event = parse_event(q("ssn_event=17&number=0612345678&ext=201&" + CALL))
    assert isinstance(event, CallOutgoing)
    assert event.direction is Direction.OUTGOING
    assert event.remote_number == "0612345678"  # number = recipient
    assert event.local_number == "201"  # ext = the calling user


@pytest.mark.parametrize("code", [18, 19])
def test_answered_and_rejected_depend_on_direction(code: int) -> None:
    # Outgoing call from 201 to 0612345678: number = callee (remote), ext = caller (user).
    event = parse_event(q(f"ssn_event={code}&number=0612345678&ext=201&" + CALL))
    assert isinstance(event, CallAnswered if code == 18 else CallRejected)
    assert event.callee_number == "0612345678"
    assert event.caller_number == "201"
    assert event.remote_number_for(Direction.OUTGOING) == "0612345678"
    assert event.local_number_for(Direction.OUTGOING) == "201"
    # Incoming call from 0612345678 to 201: the user (201) is the callee.
    incoming = parse_event(q(f"ssn_event={code}&number=201&ext=0612345678&" + CALL))
    assert isinstance(incoming, CallAnswered | CallRejected)
    assert incoming.remote_number_for(Direction.INCOMING) == "0612345678"
    assert incoming.local_number_for(Direction.INCOMING) == "201"
    with pytest.raises(TypeError, match="direction"):
        _ = event.remote_number
    with pytest.raises(TypeError, match="direction"):
        _ = event.local_number


def test_remote_hangup() -> None:
    event = parse_event(q("ssn_event=20&number=0612345678&ext=201&" + CALL))
    assert isinstance(event, CallRemoteHangup)
    assert event.remote_number == "0612345678"  # number = who sends the disconnection
    assert event.local_number == "201"
    assert event.remote_number_for(Direction.INCOMING) == "0612345678"


def test_local_hangup() -> None:
    event = parse_event(q("ssn_event=21&number=0612345678&ext=201&" + CALL))
    assert isinstance(event, CallLocalHangup)
    assert event.remote_number == "0612345678"  # number = who receives the disconnection
    assert event.local_number == "201"  # ext = our user, who hung up


def test_minimal_call_event_and_short_identity() -> None:
    event = parse_event(q("ssn_event=16&call_id=1&number=&ext=&identity=Anna"))
    assert isinstance(event, CallIncoming)
    assert event.ext_id is None
    assert event.sender_type is None
    assert event.identity == Identity(name="Anna")
    assert event.group is None
    assert event.number == ""


def test_identity_with_extra_bars() -> None:
    assert Identity.parse("A|B|C|p1|p2|x|y").p2 == "p2|x|y"
    assert Identity.parse("|Rossi||0|0").display_name == "Rossi"


def test_extras_kept_and_token_dropped() -> None:
    event = parse_event(q("ssn_event=16&number=1&ext=2&" + CALL + "&trunk=isdn-1&x-custom="))
    assert event.params["trunk"] == "isdn-1"
    assert event.params["x-custom"] == ""
    assert "token" not in event.params
    assert "s3cret" not in repr(event)
    assert "s3cret" not in event.model_dump_json()


def test_unknown_event_keeps_everything_but_the_token() -> None:
    event = parse_event(q("ssn_event=42&foo=bar&company_id=9&token=t"))
    assert isinstance(event, UnknownEvent)
    assert event.kind is None
    assert event.ssn_event == 42
    assert event.company_id == "9"
    assert event.params == {"ssn_event": "42", "foo": "bar", "company_id": "9"}


def test_company_parameter_is_configurable() -> None:
    event = parse_event(q("ssn_event=42&companyid=5"), company_param="companyid")
    assert event.company_id == "5"


def test_repeats_give_the_same_dedup_key() -> None:
    one = parse_event(q("ssn_event=16&number=1&ext=2&" + CALL))
    two = parse_event(dict(q("ssn_event=16&number=1&ext=2&" + CALL)))
    three = parse_event(q("ssn_event=18&number=1&ext=2&" + CALL))
    assert one.dedup_key == two.dedup_key != three.dedup_key


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("number=1", "ssn_event"),
        ("ssn_event=sixteen", "ssn_event"),
        ("ssn_event=16&number=1", "call_id"),
        ("ssn_event=16&call_id=XYZ", "call_id"),
        ("ssn_event=1", "device_id"),
        ("ssn_event=16&call_id=1&call_id=2", "call_id"),
        ("ssn_event=%C2%B2", "ssn_event"),
        ("ssn_event=--5", "ssn_event"),  # "²": isdigit() but not an int
    ],
)
def test_errors_name_the_field(query: str, field: str) -> None:
    with pytest.raises(EventParseError) as info:
        parse_event(q(query))
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(EventParseError, match=r"number: .*surrogates"):
        parse_event({"ssn_event": "16", "call_id": "1", "number": "\udc80"})
    with pytest.raises(EventParseError, match="surrogates"):
        parse_event({"ssn_event": "16", "call_id": "1", "x\ud800": "1"})


def test_oversized_input_is_refused() -> None:
    with pytest.raises(EventParseError, match="longer"):
        parse_event({"ssn_event": "16", "identity": "x" * 5000})
    with pytest.raises(EventParseError, match="parameters"):
        parse_event({f"p{i}": "v" for i in range(100)} | {"ssn_event": "42"})


_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)  # surrogates included
_TEXT = _ANY_TEXT | st.sampled_from(
    [
        "16",
        "1",
        "2",
        "18",
        "0",
        "-1",
        "000012A0",
        "1.2.3.4:5060",
        "[::1]:0",
        "a|b|c",
        " 7 ",
        "\u00b2",
        "--5",
        "\udc80",
        "h:\u00b2",
        "\u0665",
    ]
)
_KEYS = st.sampled_from(
    [
        "ssn_event",
        "call_id",
        "device_id",
        "device_type",
        "device_host",
        "sender_type",
        "sender_id",
        "identity",
        "number",
        "ext",
        "ext_id",
        "token",
        "company_id",
    ]
) | st.text(st.characters(exclude_categories=()), max_size=70)


#: Valid callbacks to start from, so mutations reach the checks deep inside each event type.
_BASES = [
    dict(q("ssn_event=1&device_id=12a0&device_type=2&device_host=10.0.0.5%3A5060&number=201")),
    dict(q("ssn_event=16&number=0612345678&ext=201&" + CALL)),
    dict(q("ssn_event=18&number=0612345678&ext=201&" + CALL)),
    {"ssn_event": "42", "foo": "bar"},
]
_MUTATED = st.builds(
    lambda base, changes: {**base, **changes},
    st.sampled_from(_BASES),
    st.dictionaries(_KEYS, _TEXT, max_size=4),
)


@settings(max_examples=500)
@given(
    st.dictionaries(_KEYS, _TEXT, max_size=12)
    | st.lists(st.tuples(_KEYS, _TEXT), max_size=12)
    | _MUTATED
)
def test_parse_returns_an_event_or_the_one_error(
    params: dict[str, str] | list[tuple[str, str]],
) -> None:
    try:
        event = parse_event(params)
    except EventParseError as exc:
        error = exc
        assert error.field
        assert error.reason
        return
    assert isinstance(event, BaseEvent)
    assert "token" not in event.params
    _ = event.dedup_key
    event.model_dump_json()


def test_a_company_id_longer_than_64_characters_is_refused() -> None:
    """It goes into every call key, and from there into CRM fields of bounded length."""
    from callbridge.voispeed.events import MAX_COMPANY_LENGTH, EventParseError

    base = {"ssn_event": "16", "call_id": "000012A0", "number": "0612345678", "ext": "201"}
    event = parse_event({**base, "company_id": "c" * MAX_COMPANY_LENGTH})
    assert event.company_id == "c" * MAX_COMPANY_LENGTH
    with pytest.raises(EventParseError, match="company_id: longer than 64"):
        parse_event({**base, "company_id": "c" * (MAX_COMPANY_LENGTH + 1)})
