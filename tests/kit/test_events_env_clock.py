"""The event factory parses like the ingress, the env fixture isolates, the clock obeys."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callbridge.testing import REMOTE, CallbridgeEnv, EventFactory, FakeClock
from callbridge.voispeed.codes import Direction
from callbridge.voispeed.events import (
    CallAnswered,
    CallIncoming,
    CallLocalHangup,
    CallOutgoing,
    CallRejected,
    CallRemoteHangup,
    DeviceLogin,
    DeviceLogout,
    EventParseError,
    parse_event,
)


def test_every_ssn_event_has_a_builder(events: EventFactory) -> None:
    built = events.every_event()
    assert [b.ssn_event for b in built] == [1, 2, 16, 17, 18, 19, 20, 21]
    types = [DeviceLogin, DeviceLogout, CallIncoming, CallOutgoing, CallAnswered, CallRejected]
    types += [CallRemoteHangup, CallLocalHangup]
    for item, expected in zip(built, types, strict=True):
        assert isinstance(item.event, expected)
        assert parse_event(item.params) == item.event  # the params alone give the event
        assert all(isinstance(v, str) for v in item.params.values())


def test_roles_land_in_the_right_parameter(events: EventFactory) -> None:
    call = events.call_id()
    ring = events.incoming(call, remote="0298765432", extension="202")
    assert ring.params["number"] == "0298765432" and ring.params["ext"] == "202"
    assert ring.event.remote_number == "0298765432"
    inbound = events.answered(call, remote="0298765432", extension="202")
    assert inbound.event.remote_number_for(Direction.INCOMING) == "0298765432"
    out = events.outgoing(remote=REMOTE, extension="203")
    answer = events.answered(out.event.call_id, direction="outbound", extension="203")
    assert answer.event.remote_number_for(Direction.OUTGOING) == REMOTE
    assert answer.event.local_number_for(Direction.OUTGOING) == "203"
    for hangup in (events.remote_hangup(call), events.local_hangup(call)):
        assert hangup.event.remote_number == REMOTE


def test_call_ids_are_unique_pbx_identifiers(events: EventFactory) -> None:
    ids = {events.call_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 8 and i == i.upper() for i in ids)


def test_identity_group_and_external_id_are_parsed(events: EventFactory) -> None:
    ring = events.incoming(group="600", ext_id="cb-1")
    assert ring.event.identity is not None
    assert ring.event.identity.display_name == "Anna Neri"
    assert ring.event.group == "600" and ring.event.ext_id == "cb-1"


def test_bad_parameters_fail_like_the_ingress(events: EventFactory) -> None:
    with pytest.raises(EventParseError):
        events.make(16, number="x")  # no call_id
    with pytest.raises(EventParseError):
        events.device_login(device_id="not-an-id")
    # A device type the document does not list is no reason to refuse a login (kept raw).
    login = events.device_login(device_type=99)
    assert login.event.device_type is None  # type: ignore[union-attr]
    assert login.event.params["device_type"] == "99"


def test_env_is_clean_and_restored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CALLBRIDGE_DEFAULT_REGION", "US")
    monkeypatch.setenv("CALLBRIDGE_KITCRM_URL", "http://leak")
    outside = Path.cwd()
    with monkeypatch.context() as inner:
        env = CallbridgeEnv(inner, tmp_path)
        assert "CALLBRIDGE_KITCRM_URL" not in os.environ
        assert env.settings().default_region == "IT"
        assert env.settings().data_dir == tmp_path / "data"
        env.write_dotenv("CALLBRIDGE_DEFAULT_REGION=FR\n")
        assert env.settings().default_region == "FR"  # the .env of the tmp workdir only
        env.set(CALLBRIDGE_DEFAULT_REGION="DE")
        assert env.settings().default_region == "DE"
        assert Path.cwd() != outside
    assert os.environ["CALLBRIDGE_DEFAULT_REGION"] == "US"
    assert os.environ["CALLBRIDGE_KITCRM_URL"] == "http://leak"
    assert Path.cwd() == outside


def test_fixture_env_has_no_outside_variables(callbridge_env: CallbridgeEnv) -> None:
    names = [n for n in os.environ if n.startswith("CALLBRIDGE_")]
    assert names == ["CALLBRIDGE_DATA_DIR"]
    assert "CALLBRIDGE_DATA_DIR" in repr(callbridge_env)


def test_clock_moves_only_when_told(clock: FakeClock) -> None:
    start = clock()
    assert start.tzinfo is UTC
    assert clock() == start
    assert clock.advance(90) - start == (clock() - start)
    assert (clock() - start).total_seconds() == 90
    with pytest.raises(ValueError):
        clock.advance(-1)
    clock.set(datetime(2030, 1, 1))
    assert clock().year == 2030 and clock().tzinfo is UTC
