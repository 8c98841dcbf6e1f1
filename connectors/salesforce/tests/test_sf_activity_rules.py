"""The right Task, once, whatever the call: reused ids, record types, lengths, days, owners.

Each test runs the real simple-salesforce against the fake org, which refuses what
Salesforce refuses (STRING_TOO_LONG, FIELD_INTEGRITY_EXCEPTION, INVALID_FIELD...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sf_fake import FakeOrg
from sf_helpers import make_call, make_record

from callbridge import Contact, CrmContext
from callbridge.testing import shifted_record
from callbridge_salesforce.activity import CALL_OBJECT_MAX, activity_key
from callbridge_salesforce.plugin import SalesforcePlugin

Make = Callable[..., SalesforcePlugin]
NUMBER = "+390612345678"


def test_a_reused_call_id_is_logged_again_not_adopted(org: FakeOrg, make_plugin: Make) -> None:
    plugin = make_plugin()
    first = make_record(make_call())
    later = shifted_record(first, timedelta(days=45))
    first_ref = plugin.log_call(first)
    # A new plugin: nothing in memory, as after a restart with the journal pruned.
    later_ref = make_plugin().log_call(later)
    again = make_plugin().log_call(later)
    assert first_ref is not None and later_ref is not None
    assert first_ref.record_id != later_ref.record_id
    assert again == later_ref
    tasks = org.tasks()
    assert len(tasks) == 2
    assert {t["ActivityDate"] for t in tasks} == {"2025-03-14", "2025-04-28"}


def test_a_task_under_the_key_that_is_another_call_is_not_adopted(
    org: FakeOrg, make_plugin: Make
) -> None:
    record = make_record(make_call())
    # A Task with this call's key but another call's data (a key written by an older
    # version, or a colliding one): it must not swallow this call.
    squatter = org.insert(
        "Task",
        Subject="Inbound call from +390299999999",
        CallObject=activity_key(record, "salesforce"),
        Description="From: +390299999999\ncallbridge signature: something else",
    )
    plugin = make_plugin()
    ref = plugin.log_call(record)
    assert ref is not None and ref.record_id != squatter
    assert plugin.log_call(record) == ref  # found again under the alternate key
    mine = org.records["Task"][ref.record_id]
    assert mine["CallObject"] == activity_key(record, "salesforce", alternate=True)
    assert len(org.tasks()) == 2


@pytest.mark.parametrize("record_type", ["contact", "CONTACT", "003", "", "Account"])
def test_click_to_call_record_type_in_any_case_or_by_prefix(
    org: FakeOrg, make_plugin: Make, record_type: str
) -> None:
    account = org.insert("Account", Name="Acme")
    contact = org.insert("Contact", LastName="Bianchi", AccountId=account)
    crm = CrmContext(connector="salesforce", record_type=record_type, record_id=contact)
    make_plugin().log_call(make_record(make_call(crm=crm)))
    (task,) = org.tasks()
    assert task["WhoId"] == contact  # the id's prefix says Contact, whatever the page said
    assert task["WhatId"] == account


def test_a_relation_salesforce_refuses_drops_the_relation_not_the_task(
    org: FakeOrg, make_plugin: Make, caplog: pytest.LogCaptureFixture
) -> None:
    # An Opportunity id the org does not know (deleted since the click): Salesforce refuses
    # the WhatId. The Task is written without it and says why.
    crm = CrmContext(connector="salesforce", record_type="Opportunity", record_id="006A0000001")
    caplog.set_level(logging.WARNING)
    ref = make_plugin().log_call(make_record(make_call(crm=crm)))
    (task,) = org.tasks()
    assert ref is not None and ref.record_id == task["Id"]
    assert "WhatId" not in task
    description = str(task["Description"])
    assert description.startswith("callbridge could not set WhatId 006A0000001: ")
    assert "INVALID_CROSS_REFERENCE_KEY" in description  # Salesforce's own answer
    assert "without WhatId" in caplog.text


def test_a_long_company_id_is_bounded_and_still_once(org: FakeOrg, make_plugin: Make) -> None:
    org.add_external_id("Callbridge_Key__c")
    company = "x" * 300
    plain = make_record(make_call(key=f"{company}:000012A0"))
    upserted = make_record(make_call(key=f"{company}:000012A1"))
    for record, settings in (
        (plain, {}),
        (upserted, {"task_external_id_field": "Callbridge_Key__c"}),
    ):
        plugin = make_plugin(**settings)
        ref = plugin.log_call(record)
        assert make_plugin(**settings).log_call(record) == ref
    tasks = org.tasks()
    assert len(tasks) == 2
    assert all(len(str(t["CallObject"])) == CALL_OBJECT_MAX for t in tasks)
    assert all(str(t["CallObject"]).startswith("callbridge:xxx") for t in tasks)
    assert len({t["CallObject"] for t in tasks}) == 2  # the hash tells them apart
    (keyed,) = [t for t in tasks if t.get("Callbridge_Key__c")]
    assert keyed["Callbridge_Key__c"] == keyed["CallObject"]


def test_activity_date_is_the_org_day_not_the_utc_day(org: FakeOrg, make_plugin: Make) -> None:
    # 23:30 UTC on 14 March is 00:30 on the 15th in Rome (the org's time zone).
    late = shifted_record(make_record(make_call()), timedelta(hours=14))
    assert late.call.ring_at == datetime(2025, 3, 14, 23, 30, tzinfo=UTC)
    plugin = make_plugin()
    plugin.log_call(late)
    plugin.log_call(shifted_record(late, timedelta(minutes=1)))
    assert {t["ActivityDate"] for t in org.tasks()} == {"2025-03-15"}
    assert org.count("GET", "FROM+Organization") == 1  # read once
    make_plugin(time_zone="America/New_York").log_call(shifted_record(late, timedelta(minutes=2)))
    assert sorted(t["ActivityDate"] for t in org.tasks()) == [
        "2025-03-14",
        "2025-03-15",
        "2025-03-15",
    ]


def test_a_bad_time_zone_setting_is_refused(make_settings: Callable[..., object]) -> None:
    with pytest.raises(ValueError, match="Europe/Rome"):
        make_settings(time_zone="Rome")


def test_durations_round_to_the_nearest_second(org: FakeOrg, make_plugin: Make) -> None:
    record = make_record(make_call()).model_copy(update={"duration_ms": 63_600})
    make_plugin().log_call(record)
    (task,) = org.tasks()
    assert task["CallDurationInSeconds"] == 64


def test_a_refused_owner_lookup_gives_a_task_without_owner_warned_once(
    org: FakeOrg, make_plugin: Make, caplog: pytest.LogCaptureFixture
) -> None:
    org.insert("User", Username="mario@acme.example", Extension="201", IsActive=True)
    org.fail("FROM+User", 400, "INVALID_FIELD", "No such column 'Extension'", times=10)
    caplog.set_level(logging.WARNING)
    plugin = make_plugin()
    plugin.log_call(make_record(make_call()))
    plugin.log_call(make_record(make_call(key="1:000012A1")))
    tasks = org.tasks()
    assert len(tasks) == 2
    assert all("OwnerId" not in t for t in tasks)
    assert caplog.text.count("the owner lookup is refused") == 1


def test_a_failed_search_raises_so_the_core_searches_again(org: FakeOrg, make_plugin: Make) -> None:
    from callbridge import RetryLater

    org.insert("Contact", LastName="Rossi", Phone=NUMBER)
    org.fail("/search/", 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    plugin = make_plugin()
    call = make_call()
    with pytest.raises(RetryLater):
        plugin.lookup_contact(number=NUMBER, call=call)
    found = plugin.lookup_contact(number=NUMBER, call=call)
    assert isinstance(found, Contact)


def test_a_delivery_from_before_the_upgrade_finds_its_task(org: FakeOrg, make_plugin: Make) -> None:
    # Written by the older version: CallObject was the call key, no signature line.
    old = org.insert("Task", Subject="Inbound call", CallObject="1:000012A0", Description="x")
    record = make_record(make_call()).model_copy(update={"key_format": 1})
    ref = make_plugin().log_call(record)
    assert ref is not None and ref.record_id == old
    assert len(org.tasks()) == 1
