"""The agent's wrap-up amends the call engagement: one PATCH per revision, moved on choice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hs_fake import FakeHubSpot
from hs_support import make_call, make_record

from callbridge import CallRecord, Contact, CrmContext, PermanentError, WrapUp
from callbridge_hubspot.plugin import HubSpotPlugin

Factory = Callable[..., HubSpotPlugin]
CONNECTED = "f240bbac-87c9-4f6e-bf70-924b57d47db7"  # "Connected", a default disposition


def _contact(cid: str, name: str) -> Contact:
    return Contact(connector="hubspot", record_type="contact", record_id=cid, name=name)


def _wrapup(call: CallRecord, revision: int, **fields: object) -> CallRecord:
    wrapup = WrapUp(
        call_key=call.call.key,
        revision=revision,
        saved_at=datetime(2025, 3, 4, 9, 40, tzinfo=UTC),
        **fields,  # type: ignore[arg-type]
    )
    return call.model_copy(update={"wrapup": wrapup})


def _chosen(record_id: str, record_type: str = "contact") -> CrmContext:
    return CrmContext(connector="hubspot", record_type=record_type, record_id=record_id)


def test_an_ambiguous_call_is_moved_to_the_chosen_contact(
    fake: FakeHubSpot, make_plugin: Factory
) -> None:
    giulia = fake.add_contact(firstname="Giulia", phone="+390287654321")
    luca = fake.add_contact(firstname="Luca", phone="+390287654321")
    both = _contact(giulia, "Giulia").model_copy(
        update={"candidates": [_contact(giulia, "Giulia"), _contact(luca, "Luca")]}
    )
    plugin = make_plugin()
    record = make_record(make_call(), both)
    ref = plugin.log_call(record)
    assert ref is not None
    call_id = ref.record_id
    assert fake.associations_of(call_id) == {("contacts", giulia), ("contacts", luca)}

    first = _wrapup(
        record,
        1,
        notes="Wants a quote\nfor 3 trucks <urgent>",
        outcome=CONNECTED,
        record=_chosen(luca),
        related=_chosen("7001", "deal"),
    )
    amended = plugin.update_call(first, ref, 1)
    assert amended.record_id == call_id
    props = fake.calls[call_id]["properties"]
    assert props["hs_call_disposition"] == CONNECTED
    assert props["hs_call_body"].startswith(
        "<p><b>Notes (wrap-up 1)</b><br>Wants a quote<br>for 3 trucks &lt;urgent&gt;</p>"
    )
    assert "callbridge call: " in props["hs_call_body"]
    assert fake.associations_of(call_id) == {("contacts", luca), ("deals", "7001")}
    assert fake.count("PATCH", f"/crm/v3/objects/calls/{call_id}") == 1

    second = _wrapup(record, 2, notes="Wrong Bianchi", record=_chosen(giulia))
    plugin.update_call(second, ref, 2)
    assert fake.associations_of(call_id) == {("contacts", giulia), ("deals", "7001")}
    assert "Wrong Bianchi" in fake.calls[call_id]["properties"]["hs_call_body"]
    assert fake.count("PATCH", f"/crm/v3/objects/calls/{call_id}") == 2
    # Still one engagement: a retried log_call finds it in the ledger.
    assert plugin.log_call(record) == plugin.log_call(record)
    assert len(fake.calls) == 1


def test_a_record_hubspot_cannot_point_a_call_at_is_refused(
    fake: FakeHubSpot, make_plugin: Factory
) -> None:
    plugin = make_plugin()
    record = make_record(make_call(), None)
    ref = plugin.log_call(record)
    assert ref is not None
    bad = _wrapup(record, 1, record=_chosen("abc", "quote"))
    with pytest.raises(PermanentError, match="quote abc"):
        plugin.update_call(bad, ref, 1)
