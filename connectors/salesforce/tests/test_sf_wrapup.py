"""The agent's wrap-up amends the call's Task: one PATCH per revision, re-parented on choice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sf_fake import FakeOrg
from sf_helpers import make_call, make_record

from callbridge import CallRecord, CallState, Contact, CrmContext, WrapUp
from callbridge_salesforce.plugin import SalesforcePlugin

Make = Callable[..., SalesforcePlugin]
NUMBER = "+390612345678"


def _wrapup(call: CallRecord, revision: int, **fields: object) -> CallRecord:
    wrapup = WrapUp(
        call_key=call.call.key,
        revision=revision,
        saved_at=datetime(2025, 3, 14, 9, 40, tzinfo=UTC),
        **fields,  # type: ignore[arg-type]
    )
    return call.model_copy(update={"wrapup": wrapup})


def _patches(org: FakeOrg, task_id: str) -> int:
    return org.count("PATCH", f"/sobjects/Task/{task_id}")


def test_an_ambiguous_call_is_moved_to_the_chosen_contact(org: FakeOrg, make_plugin: Make) -> None:
    account = org.insert("Account", Name="Bianchi Logistica")
    giulia = org.insert("Contact", LastName="Giulia", Phone=NUMBER, AccountId=account)
    luca = org.insert("Contact", LastName="Luca", Phone=NUMBER, AccountId=account)
    opportunity = org.insert("Opportunity", Name="3 trucks")
    plugin = make_plugin()
    found = plugin.lookup_contact(number=NUMBER, call=make_call(state=CallState.RINGING))
    assert isinstance(found, Contact) and found.ambiguous
    record = make_record(make_call(), found)
    ref = plugin.log_call(record)
    assert ref is not None
    (task,) = org.tasks()
    assert "WhoId" not in task and "Several records match" in str(task["Description"])

    chosen = CrmContext(connector="salesforce", record_type="Contact", record_id=luca)
    related = CrmContext(connector="salesforce", record_type="Opportunity", record_id=opportunity)
    first = _wrapup(
        record, 1, notes="Wants a quote", outcome="Interested", record=chosen, related=related
    )
    assert plugin.update_call(first, ref, 1) == ref
    (task,) = org.tasks()
    assert (task["WhoId"], task["WhatId"]) == (luca, opportunity)
    assert task["CallDisposition"] == "Interested"
    text = str(task["Description"])
    assert text.startswith("Notes (wrap-up 1):\nWants a quote")
    assert "callbridge signature: " in text  # a retried log_call still adopts this Task
    assert _patches(org, ref.record_id) == 1

    moved = CrmContext(connector="salesforce", record_type="Contact", record_id=giulia)
    second = _wrapup(record, 2, notes="Wrong person", outcome="Wrong number", record=moved)
    plugin.update_call(second, ref, 2)
    (task,) = org.tasks()
    assert (task["WhoId"], task["WhatId"]) == (giulia, account)
    assert str(task["Description"]).startswith("Notes (wrap-up 2):\nWrong person")
    assert "Wants a quote" not in str(task["Description"])
    assert _patches(org, ref.record_id) == 2
    # The Task is still found as this call's: log_call again writes nothing new.
    assert plugin.log_call(record) == ref
    assert len(org.tasks()) == 1


def test_a_lead_chosen_drops_the_related_record(org: FakeOrg, make_plugin: Make) -> None:
    lead = org.insert("Lead", LastName="Verdi", Company="V", Phone="+390299999999")
    opportunity = org.insert("Opportunity", Name="x")
    plugin = make_plugin()
    record = make_record(make_call(), None)
    ref = plugin.log_call(record)
    assert ref is not None
    chosen = CrmContext(connector="salesforce", record_type="Lead", record_id=lead)
    related = CrmContext(connector="salesforce", record_type="Opportunity", record_id=opportunity)
    plugin.update_call(_wrapup(record, 1, record=chosen, related=related), ref, 1)
    (task,) = org.tasks()
    assert task["WhoId"] == lead and task.get("WhatId") is None
