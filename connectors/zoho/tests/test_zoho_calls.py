"""One Calls record per finished call: its fields as Zoho checks them, and exactly once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from zoho_fake import FakeZoho

from callbridge import (
    Contact,
    CrmContext,
    Direction,
    HungUpBy,
    Outcome,
    PermanentError,
    RetryLater,
    signature_line,
)
from callbridge.testing import make_record, shifted_record
from callbridge_zoho import activity
from callbridge_zoho.plugin import ZohoPlugin

CALLER = "+390612345678"
UPSERT = "/crm/v7/Calls/upsert"


@pytest.fixture
def account(fake: FakeZoho) -> dict[str, str]:
    acme = fake.add("Accounts", Account_Name="Acme S.r.l.", Phone="+39 06 0000 0000")
    anna = fake.add("Contacts", First_Name="Anna", Last_Name="Neri", Phone="06 1234 5678",
                    Account_Name={"name": "Acme S.r.l.", "id": acme})  # fmt: skip
    lead = fake.add("Leads", Last_Name="Verdi", Phone="+39 02 8765 4321", Company="Beta")
    mario = fake.add_user("mario@acme.example", "Mario Rossi")
    return {"acme": acme, "anna": anna, "lead": lead, "mario": mario}


def _contact(record_type: str, record_id: str) -> Contact:
    return Contact(connector="zoho", record_type=record_type, record_id=record_id, name="x")


def _only_call(fake: FakeZoho) -> dict[str, Any]:
    (call,) = fake.calls()
    return call


def test_an_answered_inbound_call_on_the_found_contact(
    fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin], account: dict[str, str]
) -> None:
    plugin = make_plugin(time_zone="Europe/Rome", owner_emails={"201": "mario@acme.example"})
    found = plugin.lookup_contact(CALLER, make_record().call)  # learns Anna's Account
    assert found is not None
    record = make_record(contacts={"zoho": found}, talk_s=95)
    ref = plugin.log_call(record)
    call = _only_call(fake)
    assert ref is not None and ref.record_id == call["id"]
    assert ref.url == f"https://crm.zoho.eu/crm/org20071234/tab/Calls/{call['id']}"
    assert call["Call_Type"] == "Inbound"
    assert call["Call_Duration"] == "01:35"
    # The start in Rome's offset (winter: +01:00), to the second.
    start = record.started_at
    assert start is not None
    rome = start.astimezone(ZoneInfo("Europe/Rome")).replace(microsecond=0)
    assert call["Call_Start_Time"] == rome.isoformat()
    assert call["Call_Start_Time"].endswith("+01:00")
    assert call["Who_Id"] == {"id": account["anna"]}
    assert (call["What_Id"], call["$se_module"]) == ({"id": account["acme"]}, "Accounts")
    assert call["Owner"] == {"id": account["mario"]}
    assert call["Callbridge_Key"] == record.idempotency_key("zoho")
    assert call["Description"].endswith(signature_line(record))
    assert call["Caller_ID"] == CALLER
    assert "Call_Result" not in call  # no mapping configured


def test_a_missed_call_and_an_outbound_call_from_a_clicked_lead(
    fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin], account: dict[str, str]
) -> None:
    plugin = make_plugin(call_results={"missed": "No response", "answered": "Interested"})
    missed = make_record("0000AA01", outcome=Outcome.MISSED, talk_s=0)
    plugin.log_call(missed)
    crm = CrmContext(connector="zoho", record_type="Lead", record_id=account["lead"])
    outbound = make_record(
        "0000AA02", direction=Direction.OUTBOUND, crm=crm, remote_e164="+390287654321",
        remote_number="0287654321", hung_up_by=HungUpBy.LOCAL,
    )  # fmt: skip
    plugin.log_call(outbound)
    by_key = {c["Callbridge_Key"]: c for c in fake.calls()}
    first = by_key[missed.idempotency_key("zoho")]
    assert first["Call_Type"] == "Missed" and "Call_Duration" not in first
    assert first["Call_Result"] == "No response"
    assert first["Subject"] == f"Missed call from {CALLER}"
    second = by_key[outbound.idempotency_key("zoho")]
    assert second["Call_Type"] == "Outbound"
    assert second["Outgoing_Call_Status"] == "Completed"
    assert second["Dialled_Number"] == "+390287654321"
    assert (second["What_Id"], second["$se_module"]) == ({"id": account["lead"]}, "Leads")
    assert "Who_Id" not in second
    assert second["Call_Result"] == "Interested"


def test_an_ambiguous_caller_is_listed_not_guessed(
    fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin], account: dict[str, str]
) -> None:
    candidates = [_contact("Contact", account["anna"]), _contact("Contact", "123")]
    tie = candidates[0].model_copy(update={"candidates": candidates})
    make_plugin().log_call(make_record(contacts={"zoho": tie}))
    call = _only_call(fake)
    assert "Who_Id" not in call and "What_Id" not in call
    assert f"Contact x ({account['anna']})" in call["Description"]


def test_a_lost_answer_and_a_lagging_index_still_give_one_record(
    fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin], account: dict[str, str]
) -> None:
    plugin = make_plugin()
    record = make_record()
    fake.hold_index = True  # the search does not see the new record yet
    fake.drop_next(UPSERT)  # Zoho writes it, the answer is lost
    with pytest.raises(RetryLater):
        plugin.log_call(record)
    assert len(fake.calls()) == 1
    ref = make_plugin().log_call(record)  # a retry after a restart: upserted on the key
    call = _only_call(fake)
    assert ref is not None and ref.record_id == call["id"]
    fake.release_index()
    again = make_plugin().log_call(record)  # found by search: nothing is written
    assert again is not None and again.record_id == call["id"]
    assert len(fake.requests_to("POST", UPSERT)) == 2


def test_a_record_under_the_key_that_is_another_call_is_not_adopted(
    fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin], account: dict[str, str]
) -> None:
    record = make_record()
    key = record.idempotency_key("zoho")
    other = shifted_record(record, timedelta(days=40))
    fields = activity.fields(
        other, key_field="Callbridge_Key", key=key, zone=UTC, owner_id=None,
        who=None, what=None, call_results={},
    )  # fmt: skip
    fake.add("Calls", **fields)  # an earlier call that somehow got this call's key
    ref = make_plugin().log_call(record)
    assert ref is not None
    keys = sorted(c["Callbridge_Key"] for c in fake.calls())
    assert keys == sorted([key, record.idempotency_key("zoho", alternate=True)])
    same = make_plugin().log_call(record)
    assert same is not None and same.record_id == ref.record_id
    assert len(fake.calls()) == 2


def test_a_missing_key_field_names_the_setting(
    fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin]
) -> None:
    with pytest.raises(PermanentError, match="CALLBRIDGE_ZOHO_KEY_FIELD"):
        make_plugin(key_field="Not_There").log_call(make_record())
    assert not fake.calls()


def test_a_refused_owner_lookup_is_a_note_not_a_lost_call(
    fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin], account: dict[str, str]
) -> None:
    plugin = make_plugin(owner_emails={"201": "mario@acme.example"})
    refusal = {"code": "NO_PERMISSION", "details": {}, "message": "denied", "status": "error"}
    fake.fail_next("GET /crm/v7/users", 403, refusal)
    plugin.log_call(make_record())
    assert "Owner" not in _only_call(fake)
    (note,) = plugin.notes()
    assert "owner" in note and "NO_PERMISSION" in note


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "00:00"), (59, "00:59"), (95, "01:35"), (4503, "75:03")]
)
def test_call_duration_is_minutes_and_seconds(seconds: int, text: str) -> None:
    assert activity.duration(seconds) == text
