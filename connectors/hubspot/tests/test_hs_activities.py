"""Call engagements: their fields, associations, and exactly once across retries and restarts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hs_fake import FakeHubSpot
from hs_support import make_call, make_record

from callbridge import Contact, CrmContext, Direction, HungUpBy, Outcome, PermanentError, RetryLater
from callbridge_hubspot.plugin import HubSpotPlugin

Factory = Callable[..., HubSpotPlugin]


def _contact(cid: str) -> Contact:
    return Contact(connector="hubspot", record_type="contact", record_id=cid, name="Anna Rossi")


def test_inbound_answered_call_fields(fake: FakeHubSpot, make_plugin: Factory) -> None:
    cid = fake.add_contact(firstname="Anna", phone="+390612345678")
    owner = fake.add_owner("anna@example.com")
    plugin = make_plugin(owners={"201": owner})
    record = make_record(
        make_call(group="Sales"), _contact(cid), recording_url="https://rec.example/1.mp3"
    )
    ref = plugin.log_call(record)
    assert ref is not None
    assert ref.record_type == "call"
    assert ref.url == f"https://app-eu1.hubspot.com/contacts/7654321/record/0-1/{cid}"
    call = fake.calls[ref.record_id]
    props = call["properties"]
    assert props["hs_timestamp"] == "2025-03-04T09:30:00.000Z"
    assert props["hs_call_direction"] == "INBOUND"
    assert props["hs_call_status"] == "COMPLETED"
    assert props["hs_call_duration"] == "60000"
    assert props["hs_call_from_number"] == "+390612345678"
    assert props["hs_call_to_number"] == "201"
    assert props["hs_call_disposition"] == "f240bbac-87c9-4f6e-bf70-924b57d47db7"
    assert props["hs_call_recording_url"] == "https://rec.example/1.mp3"
    assert props["hubspot_owner_id"] == owner
    assert props["hs_call_external_id"] == "callbridge:1:000012A0@20250304T093000.000Z:hubspot"
    assert props["hs_call_title"] == "Call from +390612345678"
    assert "Group: Sales" in props["hs_call_body"]
    assert call["associations"] == [("contacts", cid, 194)]


@pytest.mark.parametrize(
    ("direction", "outcome", "hung_up_by", "status", "disposition"),
    [
        (Direction.INBOUND, Outcome.MISSED, HungUpBy.REMOTE, "NO_ANSWER", "73a0d17f"),
        (Direction.INBOUND, Outcome.REJECTED, HungUpBy.LOCAL, "BUSY", "9d9162e7"),
        (Direction.OUTBOUND, Outcome.MISSED, HungUpBy.LOCAL, "CANCELED", "73a0d17f"),
        (Direction.OUTBOUND, Outcome.MISSED, HungUpBy.REMOTE, "NO_ANSWER", "73a0d17f"),
        (Direction.OUTBOUND, Outcome.UNKNOWN, HungUpBy.UNKNOWN, "FAILED", None),
    ],
)
def test_status_and_disposition_per_outcome(
    fake: FakeHubSpot,
    make_plugin: Factory,
    direction: Direction,
    outcome: Outcome,
    hung_up_by: HungUpBy,
    status: str,
    disposition: str | None,
) -> None:
    call = make_call(direction, outcome, hung_up_by=hung_up_by)
    ref = make_plugin().log_call(make_record(call))
    assert ref is not None
    props = fake.calls[ref.record_id]["properties"]
    assert props["hs_call_status"] == status
    assert props["hs_call_duration"] == "0"
    assert props["hs_call_direction"] == direction.value.upper()
    if disposition:
        assert props["hs_call_disposition"].startswith(disposition)
    else:
        assert "hs_call_disposition" not in props
    assert fake.calls[ref.record_id]["associations"] == []


def test_click_to_call_lands_on_the_clicked_record(fake: FakeHubSpot, make_plugin: Factory) -> None:
    found = fake.add_contact(firstname="Found", phone="+390612345678")
    call = make_call(
        Direction.OUTBOUND,
        crm=CrmContext(connector="hubspot", record_type="company", record_id="9001"),
    )
    ref = make_plugin().log_call(make_record(call, _contact(found)))
    assert ref is not None
    assert fake.calls[ref.record_id]["associations"] == [("companies", "9001", 182)]
    props = fake.calls[ref.record_id]["properties"]
    assert props["hs_call_from_number"] == "201"
    assert props["hs_call_to_number"] == "+390612345678"


def test_ambiguous_caller_is_associated_with_every_candidate(
    fake: FakeHubSpot, make_plugin: Factory
) -> None:
    a, b = fake.add_contact(firstname="A"), fake.add_contact(firstname="B")
    ambiguous = _contact(a).model_copy(update={"candidates": [_contact(a), _contact(b)]})
    ref = make_plugin().log_call(make_record(make_call(), ambiguous))
    assert ref is not None
    assert fake.calls[ref.record_id]["associations"] == [("contacts", a, 194), ("contacts", b, 194)]


def test_internal_calls_are_not_logged(fake: FakeHubSpot, make_plugin: Factory) -> None:
    assert make_plugin().log_call(make_record(make_call(Direction.INTERNAL))) is None
    assert fake.calls == {}


def test_owner_by_email_through_the_owners_api(fake: FakeHubSpot, make_plugin: Factory) -> None:
    owner = fake.add_owner("anna@example.com")
    plugin = make_plugin(owner_emails={"201": "Anna@Example.com"})
    ref = plugin.log_call(make_record(make_call()))
    assert ref is not None
    assert fake.calls[ref.record_id]["properties"]["hubspot_owner_id"] == owner
    plugin.log_call(make_record(make_call(ucid="000012A1")))
    assert fake.count("GET", "/crm/v3/owners/") == 1  # cached


def test_unknown_caller_gets_a_contact_when_enabled(
    fake: FakeHubSpot, make_plugin: Factory
) -> None:
    plugin = make_plugin(create_contacts=True)
    ref = plugin.log_call(make_record(make_call()))
    assert ref is not None
    ((kind, cid, type_id),) = fake.calls[ref.record_id]["associations"]
    assert (kind, type_id) == ("contacts", 194)
    assert fake.contacts[cid]["phone"] == "+390612345678"


def test_retries_after_429_write_once(fake: FakeHubSpot, make_plugin: Factory) -> None:
    plugin = make_plugin()
    record = make_record(make_call())
    fake.rate_limit_next("POST /crm/v3/objects/calls", times=2)
    for policy_wait in (10.0, 10.0):
        with pytest.raises(RetryLater) as caught:
            plugin.log_call(record)
        assert caught.value.retry_after == policy_wait
    first = plugin.log_call(record)
    again = make_plugin().log_call(record)  # a restart: new instance, same data dir
    assert first is not None
    assert again is not None
    assert first.record_id == again.record_id
    assert len(fake.calls) == 1
    assert fake.count("POST", "/crm/v3/objects/calls") == 3


def test_lost_answer_then_restart_does_not_duplicate(
    fake: FakeHubSpot, make_plugin: Factory
) -> None:
    """The create reaches HubSpot but its answer is lost; search lags behind the write."""
    record = make_record(make_call())
    fake.hold_index = True
    fake.drop_next("POST /crm/v3/objects/calls")
    with pytest.raises(RetryLater):
        make_plugin().log_call(record)
    assert len(fake.calls) == 1
    # Restart while search does not show the call yet: the connector waits, creates nothing.
    restarted = make_plugin()
    with pytest.raises(RetryLater) as caught:
        restarted.log_call(record)
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 1
    # A 429 on the search is a retry as well.
    fake.rate_limit_next("POST /crm/v3/objects/calls/search", policy="SECONDLY")
    with pytest.raises(RetryLater) as caught:
        restarted.log_call(record)
    assert caught.value.retry_after == 1.0
    fake.release_index()
    ref = make_plugin().log_call(record)
    assert ref is not None
    assert list(fake.calls) == [ref.record_id]
    assert fake.count("POST", "/crm/v3/objects/calls") == 1


def test_lost_answer_and_search_lag_elapsed_creates(
    fake: FakeHubSpot, make_plugin: Factory
) -> None:
    """The limit, honestly: if search still misses the call after search_lag, it is created."""
    record = make_record(make_call())
    fake.hold_index = True
    fake.drop_next("POST /crm/v3/objects/calls")
    with pytest.raises(RetryLater):
        make_plugin(search_lag=0).log_call(record)
    make_plugin(search_lag=0).log_call(record)
    assert len(fake.calls) == 2


def test_unique_property_mode_upserts(fake: FakeHubSpot, make_plugin: Factory) -> None:
    fake.unique_call_properties.add("callbridge_key")
    cid = fake.add_contact(firstname="Anna")
    record = make_record(make_call(), _contact(cid))
    fake.drop_next("POST /crm/v3/objects/calls/batch/upsert")
    with pytest.raises(RetryLater):
        make_plugin(unique_property="callbridge_key").log_call(record)
    ref = make_plugin(unique_property="callbridge_key").log_call(record)
    assert ref is not None
    assert list(fake.calls) == [ref.record_id]
    call = fake.calls[ref.record_id]
    assert (
        call["properties"]["callbridge_key"] == "callbridge:1:000012A0@20250304T093000.000Z:hubspot"
    )
    assert call["associations"] == [("contacts", cid, 194)]


def test_bad_data_goes_dead_with_hubspots_message(fake: FakeHubSpot, make_plugin: Factory) -> None:
    plugin = make_plugin(owners={"201": "999999"})  # not an owner of this account
    with pytest.raises(PermanentError) as caught:
        plugin.log_call(make_record(make_call()))
    assert "hubspot_owner_id" in str(caught.value)
    assert "HTTP 400" in str(caught.value)
    # Nothing was created, so a corrected retry need not wait for search.
    fixed = make_plugin()
    assert fixed.log_call(make_record(make_call())) is not None
    assert fake.count("POST", "/crm/v3/objects/calls/search") == 0


def test_server_errors_are_retried(fake: FakeHubSpot, make_plugin: Factory) -> None:
    fake.fail_next("POST /crm/v3/objects/calls", 502)
    with pytest.raises(RetryLater):
        make_plugin().log_call(make_record(make_call()))
