"""One engagement per call, on the right record: reused ids, refused owners, milliseconds.

The real hubspot-api-client against the fake HubSpot (``hs_fake``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from hs_fake import ALL_SCOPES, TOKEN, FakeHubSpot
from hs_support import make_call, make_record

from callbridge.testing import shifted_record
from callbridge_hubspot.plugin import HubSpotPlugin

Factory = Callable[..., HubSpotPlugin]


def test_a_reused_call_id_gets_its_own_engagement(fake: FakeHubSpot, make_plugin: Factory) -> None:
    first = make_record(make_call())
    later = shifted_record(first, timedelta(days=40))
    first_ref = make_plugin().log_call(first)
    later_ref = make_plugin().log_call(later)  # the ledger still holds the first call
    assert first_ref is not None and later_ref is not None
    assert first_ref.record_id != later_ref.record_id
    assert make_plugin().log_call(later) == later_ref
    assert len(fake.calls) == 2


def test_a_ledger_row_of_another_call_is_not_adopted(
    fake: FakeHubSpot, make_plugin: Factory
) -> None:
    record = make_record(make_call())
    plugin = make_plugin()
    key = record.idempotency_key("hubspot")
    plugin.ledger().mark_written(key, "424242", signature="1:000012A0 inbound +39000 202 -")
    ref = plugin.log_call(record)
    assert ref is not None and ref.record_id != "424242"
    props = fake.calls[ref.record_id]["properties"]
    assert props["hs_call_external_id"] == record.idempotency_key("hubspot", alternate=True)
    assert make_plugin().log_call(record) == ref
    assert len(fake.calls) == 1


def test_an_uncertain_attempt_adopts_only_an_engagement_of_this_call(
    fake: FakeHubSpot, make_plugin: Factory
) -> None:
    record = make_record(make_call())
    key = record.idempotency_key("hubspot")
    # Search shows an engagement under the key that started at another time: not ours.
    with fake.lock:
        fake._store_call({"hs_call_external_id": key, "hs_timestamp": "2024-01-01T00:00:00.000Z"})
    plugin = make_plugin(search_lag=0)
    plugin.ledger().mark_pending(key, now=0)
    ref = plugin.log_call(record)
    assert ref is not None
    assert fake.calls[ref.record_id]["properties"]["hs_timestamp"] == "2025-03-04T09:30:00.000Z"
    assert len(fake.calls) == 2


def test_a_refused_owner_lookup_leaves_the_owner_out_warned_once(
    fake: FakeHubSpot, make_plugin: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_owner("anna@example.com")
    fake.tokens[TOKEN] = ALL_SCOPES - {"crm.objects.owners.read"}
    caplog.set_level(logging.WARNING)
    plugin = make_plugin(owner_emails={"201": "anna@example.com"}, owner_cache_ttl=0)
    for ucid in ("000012A0", "000012A1"):
        ref = plugin.log_call(make_record(make_call(ucid=ucid)))
        assert ref is not None
        assert "hubspot_owner_id" not in fake.calls[ref.record_id]["properties"]
    assert fake.count("GET", "/crm/v3/owners/") == 2  # asked each time (TTL 0), warned once
    assert caplog.text.count("owner lookup refused") == 1
    (note,) = make_plugin().notes()  # another instance (the command) reads it too
    assert "crm.objects.owners.read" in note
    # The scope is granted: the owner is back, the note is gone.
    fake.tokens[TOKEN] = ALL_SCOPES
    ref = plugin.log_call(make_record(make_call(ucid="000012A2")))
    assert ref is not None
    assert fake.calls[ref.record_id]["properties"]["hubspot_owner_id"]
    assert plugin.notes() == []


def test_no_notes_and_no_ledger_file_before_any_work(make_plugin: Factory) -> None:
    plugin = make_plugin()
    assert plugin.notes() == []
    assert not plugin._ledger.path.exists()


def test_duration_in_milliseconds(fake: FakeHubSpot, make_plugin: Factory) -> None:
    record = make_record(make_call()).model_copy(update={"duration_ms": 60_123})
    ref = make_plugin().log_call(record)
    assert ref is not None
    assert fake.calls[ref.record_id]["properties"]["hs_call_duration"] == "60123"


def test_a_delivery_from_before_the_upgrade_finds_its_ledger_row(
    fake: FakeHubSpot, make_plugin: Factory
) -> None:
    record = make_record(make_call()).model_copy(update={"key_format": 1})
    plugin = make_plugin()
    # Written by the older version: the key had no start, the row no signature.
    plugin.ledger().mark_written("callbridge:1:000012A0:hubspot", "5555")
    ref = plugin.log_call(record)
    assert ref is not None and ref.record_id == "5555"
    assert fake.calls == {}
