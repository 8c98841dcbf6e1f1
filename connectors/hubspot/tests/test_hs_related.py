"""A related ticket, and a wrap-up with a recording, on the engagement (fake HubSpot)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from hs_fake import FakeHubSpot
from hs_support import make_call, make_record

from callbridge import ActivityRef, CallRecord, CrmContext, WrapUp
from callbridge_hubspot.plugin import HubSpotPlugin

Factory = Callable[..., HubSpotPlugin]
LINK = "https://pbx.example.com/rec/0000AA01.wav"


def _logged(make_plugin: Factory) -> tuple[HubSpotPlugin, CallRecord, ActivityRef]:
    """A plugin and the engagement it wrote for a call with no contact."""
    plugin = make_plugin()
    record = make_record(make_call(), None)
    ref = plugin.log_call(record)
    assert ref is not None
    return plugin, record, ref


def test_a_related_ticket_is_associated_and_the_recording_kept(
    fake: FakeHubSpot, make_plugin: Factory
) -> None:
    anna = fake.add_contact(firstname="Anna", phone="+390612345678")
    fake.tickets.add("8801")
    plugin, record, ref = _logged(make_plugin)
    call_id = ref.record_id
    ticket = CrmContext(connector="hubspot", record_type="ticket", record_id="8801")
    chosen = CrmContext(connector="hubspot", record_type="contact", record_id=anna)
    wrapup = WrapUp(
        call_key=record.call.key,
        revision=1,
        notes="Opened a ticket",
        record=chosen,
        related=ticket,
        saved_at=datetime(2025, 3, 4, 9, 40, tzinfo=UTC),
    )
    amended = record.model_copy(
        update={"wrapup": wrapup, "recording": "0000AA01", "recording_url": LINK}
    )
    plugin.update_call(amended, ref, 1)
    assert fake.associations_of(call_id) == {("contacts", anna), ("tickets", "8801")}
    props = fake.calls[call_id]["properties"]
    assert props["hs_call_recording_url"] == LINK
    assert "Opened a ticket" in props["hs_call_body"]
    assert fake.count("PATCH", f"/crm/v3/objects/calls/{call_id}") == 1


def test_a_recording_alone_is_one_patch_and_a_plain_http_link_goes_in_the_body(
    fake: FakeHubSpot, make_plugin: Factory
) -> None:
    plugin, record, ref = _logged(make_plugin)
    link = "http://pbx.lan/rec/0000AA01.wav"  # HubSpot plays back HTTPS only
    plain = record.model_copy(update={"recording": "0000AA01", "recording_url": link})
    assert plugin.update_call(plain, ref, 0) == ref
    props = fake.calls[ref.record_id]["properties"]
    assert not props.get("hs_call_recording_url")
    assert f"Recording: {link}" in props["hs_call_body"]
    assert fake.count("PATCH", f"/crm/v3/objects/calls/{ref.record_id}") == 1
    # Nothing to change (no wrap-up, no recording): no request at all.
    plugin.update_call(record, ref, 0)
    assert fake.count("PATCH", f"/crm/v3/objects/calls/{ref.record_id}") == 1
