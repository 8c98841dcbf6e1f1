"""One Task per finished call: fields, attachment rules, owners, exactly-once, errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sf_fake import FakeOrg
from sf_helpers import make_call, make_record

from callbridge import (
    CallState,
    Contact,
    CrmContext,
    Direction,
    Outcome,
    PermanentError,
    RetryLater,
)
from callbridge_salesforce.plugin import SalesforcePlugin

Make = Callable[..., SalesforcePlugin]
NUMBER = "+390612345678"


def _only_task(org: FakeOrg) -> dict[str, object]:
    tasks = org.tasks()
    assert len(tasks) == 1, tasks
    return tasks[0]


def _found(plugin: SalesforcePlugin) -> Contact:
    contact = plugin.lookup_contact(number=NUMBER, call=make_call(state=CallState.RINGING))
    assert contact is not None
    return contact


def test_inbound_answered_call_on_a_contact(org: FakeOrg, make_plugin: Make) -> None:
    account = org.insert("Account", Name="Acme")
    contact_id = org.insert("Contact", LastName="Rossi", Phone=NUMBER, AccountId=account)
    user = org.insert("User", Username="mario@acme.example", Extension="201", IsActive=True)
    plugin = make_plugin()
    record = make_record(
        make_call(group="Sales"), _found(plugin), recording_url="https://pbx/rec/1.wav"
    )
    ref = plugin.log_call(record)
    task = _only_task(org)
    assert ref is not None
    assert ref.record_type == "Task"
    assert ref.record_id == task["Id"]
    assert ref.url is not None
    assert ref.url.endswith(f"/lightning/r/Task/{task['Id']}/view")
    assert task["TaskSubtype"] == "Call"
    assert task["CallType"] == "Inbound"
    assert task["CallDurationInSeconds"] == 63
    assert task["CallDisposition"] == "Answered"
    assert task["CallObject"] == "callbridge:1:000012A0@20250314T093000.000Z:salesforce"
    assert task["Status"] == "Completed"
    assert task["ActivityDate"] == "2025-03-14"
    assert task["Subject"] == f"Inbound call from {NUMBER}"
    assert task["WhoId"] == contact_id
    assert task["WhatId"] == account
    assert task["OwnerId"] == user
    description = str(task["Description"])
    for expected in (NUMBER, "extension 201", "Group: Sales", "2025-03-14T09:30:00", "63 s"):
        assert expected in description
    assert "Recording: https://pbx/rec/1.wav" in description


def test_lead_gets_whoid_only(org: FakeOrg, make_plugin: Make) -> None:
    lead = org.insert("Lead", LastName="Verdi", Company="V", Phone=NUMBER)
    plugin = make_plugin()
    plugin.log_call(make_record(make_call(outcome=Outcome.MISSED), _found(plugin)))
    task = _only_task(org)
    assert task["WhoId"] == lead
    assert "WhatId" not in task
    assert task["CallDisposition"] == "Missed"
    assert task["CallDurationInSeconds"] == 0


def test_account_gets_whatid(org: FakeOrg, make_plugin: Make) -> None:
    account = org.insert("Account", Name="Acme", Phone=NUMBER)
    plugin = make_plugin(disposition_rejected="Rifiutata")
    plugin.log_call(make_record(make_call(outcome=Outcome.REJECTED), _found(plugin)))
    task = _only_task(org)
    assert task["WhatId"] == account
    assert "WhoId" not in task
    assert task["CallDisposition"] == "Rifiutata"


def test_the_fake_refuses_whatid_with_a_lead(org: FakeOrg, make_plugin: Make) -> None:
    lead = org.insert("Lead", LastName="Verdi", Company="V")
    account = org.insert("Account", Name="Acme")
    plugin = make_plugin()
    with pytest.raises(PermanentError, match="FIELD_INTEGRITY_EXCEPTION"):
        plugin.client.call(
            lambda sf: sf.Task.create({"Subject": "x", "WhoId": lead, "WhatId": account})
        )


def test_click_to_call_lands_on_the_clicked_record(org: FakeOrg, make_plugin: Make) -> None:
    clicked = org.insert("Contact", LastName="Clicked", Phone="+390611111111")
    org.insert("Contact", LastName="Lookup", Phone=NUMBER)
    plugin = make_plugin()
    crm = CrmContext(connector="salesforce", record_type="Contact", record_id=clicked)
    call = make_call(direction=Direction.OUTBOUND, crm=crm)
    plugin.log_call(make_record(call, _found(plugin)))
    task = _only_task(org)
    assert task["WhoId"] == clicked
    assert task["CallType"] == "Outbound"
    assert task["Subject"] == f"Outbound call to {NUMBER}"
    assert "Click-to-call id: cb-ext-1" in str(task["Description"])


def test_other_connectors_context_is_ignored(org: FakeOrg, make_plugin: Make) -> None:
    contact_id = org.insert("Contact", LastName="Lookup", Phone=NUMBER)
    plugin = make_plugin()
    crm = CrmContext(connector="hubspot", record_type="contact", record_id="123")
    plugin.log_call(make_record(make_call(crm=crm), _found(plugin)))
    assert _only_task(org)["WhoId"] == contact_id


def test_ambiguous_match_is_not_attached(org: FakeOrg, make_plugin: Make) -> None:
    org.insert("Contact", LastName="Uno", Phone=NUMBER)
    org.insert("Contact", LastName="Due", Phone=NUMBER)
    plugin = make_plugin()
    plugin.log_call(make_record(make_call(), _found(plugin)))
    task = _only_task(org)
    assert "WhoId" not in task
    assert "WhatId" not in task
    assert "Several records match" in str(task["Description"])


def test_internal_call(org: FakeOrg, make_plugin: Make) -> None:
    plugin = make_plugin(owner_source="none")
    plugin.log_call(make_record(make_call(direction=Direction.INTERNAL, number="202")))
    task = _only_task(org)
    assert task["CallType"] == "Internal"
    assert task["Subject"] == "Internal call with 202"
    assert "OwnerId" not in task


def test_owner_map_by_id_and_username(org: FakeOrg, make_plugin: Make) -> None:
    by_name = org.insert("User", Username="anna@acme.example", Extension="999", IsActive=True)
    plugin = make_plugin(owner_map=f"201={by_name[:3]}000000000XYZ,202=anna@acme.example")
    org.insert("User", Username="other", Extension="202", IsActive=True)
    plugin.log_call(make_record(make_call(extension="202")))
    assert _only_task(org)["OwnerId"] == by_name


def test_unknown_or_duplicate_extension_leaves_owner_empty(org: FakeOrg, make_plugin: Make) -> None:
    org.insert("User", Username="a", Extension="201", IsActive=True)
    org.insert("User", Username="b", Extension="201", IsActive=True)
    plugin = make_plugin()
    plugin.log_call(make_record(make_call()))
    assert "OwnerId" not in _only_task(org)
    plugin.log_call(make_record(make_call(key="1:000012A1")))
    assert org.count("GET", "FROM+User") == 1  # cached


def test_exactly_once_across_retries_and_restart(org: FakeOrg, make_plugin: Make) -> None:
    org.insert("Contact", LastName="Rossi", Phone=NUMBER)
    plugin = make_plugin()
    record = make_record(make_call(), _found(plugin))
    first = plugin.log_call(record)
    second = plugin.log_call(record)
    restarted = make_plugin().log_call(record)
    assert first == second == restarted
    assert len(org.tasks()) == 1
    assert org.count("POST", "/sobjects/Task/") == 1


def test_lost_response_does_not_duplicate(org: FakeOrg, make_plugin: Make) -> None:
    plugin = make_plugin()
    record = make_record(make_call())
    org.fail("/sobjects/Task/", 503, "SERVER_UNAVAILABLE", "down", method="POST", after=True)
    with pytest.raises(RetryLater) as info:
        plugin.log_call(record)
    assert info.value.retry_after == 300
    ref = make_plugin().log_call(record)
    assert ref is not None
    assert [t["Id"] for t in org.tasks()] == [ref.record_id]


def test_upsert_on_external_id_field(org: FakeOrg, make_plugin: Make) -> None:
    org.add_external_id("Callbridge_Key__c")
    plugin = make_plugin(task_external_id_field="Callbridge_Key__c")
    record = make_record(make_call())
    org.fail("/sobjects/Task/Callbridge_Key__c/", 500, "", "oops", method="PATCH", after=True)
    with pytest.raises(RetryLater):
        plugin.log_call(record)
    ref = make_plugin(task_external_id_field="Callbridge_Key__c").log_call(record)
    again = plugin.log_call(record)
    task = _only_task(org)
    assert ref is not None
    assert ref == again
    assert task["Callbridge_Key__c"] == "callbridge:1:000012A0@20250314T093000.000Z:salesforce"
    assert task["Id"] == ref.record_id
    assert org.count("PATCH", "/sobjects/Task/Callbridge_Key__c/callbridge%3A1%3A000012A0") == 1
    assert org.count("POST", "/sobjects/Task/") == 0


def test_upsert_race_returns_the_existing_task(org: FakeOrg, make_plugin: Make) -> None:
    """Another attempt created the Task between our look-up and our upsert."""
    org.add_external_id("Callbridge_Key__c")
    plugin = make_plugin(task_external_id_field="Callbridge_Key__c")
    record = make_record(make_call())
    key = record.idempotency_key("salesforce")
    from callbridge_salesforce.escape import select_ids
    from callbridge_salesforce.queries import upsert_task

    existing = org.insert("Task", Callbridge_Key__c=key, TaskSubtype="Call")
    fields = {"Subject": "x", "TaskSubtype": "Call"}
    match = select_ids("Task", {"Callbridge_Key__c": key})
    got = plugin.client.call(lambda sf: upsert_task(sf, "Callbridge_Key__c", key, fields, match))
    assert got == existing
    assert len(org.tasks()) == 1


def test_unknown_external_id_field_is_permanent(org: FakeOrg, make_plugin: Make) -> None:
    plugin = make_plugin(task_external_id_field="Missing__c")
    with pytest.raises(PermanentError, match="INVALID_FIELD"):
        plugin.log_call(make_record(make_call()))


def test_create_lead_for_unknown_caller_once(org: FakeOrg, make_plugin: Make) -> None:
    plugin = make_plugin(create_leads=True, lead_company="Da qualificare")
    record = make_record(make_call())
    org.fail("/sobjects/Task/", 503, "", "busy", method="POST")
    with pytest.raises(RetryLater):
        plugin.log_call(record)
    plugin.log_call(record)
    leads = list(org.records["Lead"].values())
    assert len(leads) == 1
    assert leads[0]["Phone"] == NUMBER
    assert leads[0]["Company"] == "Da qualificare"
    assert _only_task(org)["WhoId"] == leads[0]["Id"]


def test_rate_limit_and_outage_retry_later(org: FakeOrg, make_plugin: Make) -> None:
    plugin = make_plugin()
    record = make_record(make_call())
    org.fail("/query/", 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    with pytest.raises(RetryLater, match="REQUEST_LIMIT_EXCEEDED") as info:
        plugin.log_call(record)
    assert info.value.retry_after == 300
    org.fail("/query/", 502, "", "<html>Bad gateway</html>")
    with pytest.raises(RetryLater) as info:
        plugin.log_call(record)
    assert info.value.retry_after == 300
    assert plugin.log_call(record) is not None
    assert len(org.tasks()) == 1


def test_refused_data_is_permanent_with_salesforce_message(org: FakeOrg, make_plugin: Make) -> None:
    plugin = make_plugin(task_status="Finished")  # not in the Status picklist
    with pytest.raises(PermanentError, match="bad value for restricted picklist field: Finished"):
        plugin.log_call(make_record(make_call()))
    org.fail(
        "/sobjects/Task/",
        403,
        "INSUFFICIENT_ACCESS",
        "insufficient access rights on object id",
        method="POST",
    )
    with pytest.raises(PermanentError, match="insufficient access rights"):
        make_plugin().log_call(make_record(make_call()))
    assert org.tasks() == []


def test_invalid_field_is_permanent(org: FakeOrg, make_plugin: Make) -> None:
    plugin = make_plugin()
    with pytest.raises(PermanentError, match="INVALID_FIELD: No such column 'Bogus__c'"):
        plugin.client.call(lambda sf: sf.Task.create({"Bogus__c": 1}))
