"""The whole path: the VOIspeed simulator -> callbridge over HTTP -> Zoho CRM (the fake, HTTPS).

callbridge runs as ``callbridge serve`` runs it (settings from ``CALLBRIDGE_*`` variables,
the connector loaded through its entry point, uvicorn on a real port); the simulator sends
its events to ``/pbx/events`` and answers callbridge's SOAP CallReq; the connector's httpx
client talks to the fake Zoho over TLS (its CA trusted through ``SSL_CERT_FILE``). Nothing
is mocked.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from zoho_fake import FakeZoho, zoho_env

from callbridge.testing import (
    LivePbx,
    find_scenario,
    play,
    wait_until,
)

ANNA_NUMBER = "+39 06 1234 5678"  # the caller of the built-in inbound-answered scenario
UPSERT = "/crm/v7/Calls/upsert"
TAB = "https://crm.zoho.eu/crm/org20071234/tab"


@dataclass
class Org:
    """The fake organisation's records the scenarios meet."""

    fake: FakeZoho
    anna: str
    acme: str
    paolo: str
    lead: str
    mario: str
    luca: str


@pytest.fixture
def org(fake: FakeZoho) -> Org:
    acme = fake.add("Accounts", Account_Name="Acme S.r.l.", Phone="+39 06 9999 0000")
    return Org(
        fake=fake,
        anna=fake.add("Contacts", First_Name="Anna", Last_Name="Neri", Phone=ANNA_NUMBER,
                      Account_Name={"name": "Acme S.r.l.", "id": acme}),
        acme=acme,
        paolo=fake.add("Leads", First_Name="Paolo", Last_Name="Gialli", Mobile="02 87654321",
                       Company="Beta"),
        lead=fake.add("Leads", First_Name="Bruno", Last_Name="Viola", Phone="+39 011 555 0101"),
        mario=fake.add_user("mario@acme.example", "Mario Rossi"),
        luca=fake.add_user("luca@acme.example", "Luca Verdi"),
    )  # fmt: skip


@pytest.fixture
def e2e(org: Org, live_pbx: Callable[..., LivePbx]) -> LivePbx:
    settings = {
        **zoho_env(org.fake),
        "CALLBRIDGE_ZOHO_TIME_ZONE": "Europe/Rome",
        # 201 by user id; 203 by e-mail through the users API.
        "CALLBRIDGE_ZOHO_OWNERS": f"201={org.mario}",
        "CALLBRIDGE_ZOHO_OWNER_EMAILS": "203=luca@acme.example",
    }
    return live_pbx(settings, plugin="zoho", crm=org)


def _call_of(fake: FakeZoho, call_key: str) -> dict[str, Any]:
    found = [c for c in fake.calls() if f"callbridge call: {call_key}" in c["Description"]]
    assert len(found) == 1, f"expected one Calls record for {call_key}, got {fake.calls()}"
    return found[0]


def test_inbound_calls_become_calls_records_and_the_pop_links_the_record(e2e: LivePbx) -> None:
    service, org = e2e.service, e2e.crm
    fake = org.fake
    pop = e2e.play_inbound_pair("zoho")

    contact = pop["contacts"]["zoho"]
    assert pop["state"] == "ringing"
    assert (contact["record_type"], contact["record_id"]) == ("Contact", org.anna)
    assert contact["url"] == f"{TAB}/Contacts/{org.anna}"
    assert contact["company"] == "Acme S.r.l."

    wait_until(lambda: len(fake.calls()) == 2, "two Calls records")
    assert service.wait_idle()

    call = service.call_of("201")
    answered = _call_of(fake, call.key)
    delivery = service.delivery_of(call.key, "zoho")
    assert delivery.state == "done"
    assert delivery.result is not None and delivery.result["record_id"] == answered["id"]
    assert delivery.result["url"] == f"{TAB}/Calls/{answered['id']}"
    assert answered["Call_Type"] == "Inbound"
    minutes, seconds = map(int, answered["Call_Duration"].split(":"))
    assert minutes * 60 + seconds == delivery.payload["duration_s"] >= 1
    assert answered["Call_Start_Time"][-6:] in ("+01:00", "+02:00")  # Rome's offset
    assert answered["Who_Id"] == {"id": org.anna}
    assert (answered["What_Id"], answered["$se_module"]) == ({"id": org.acme}, "Accounts")
    assert answered["Owner"] == {"id": org.mario}
    assert answered["Callbridge_Key"].startswith(f"callbridge:{call.key}@")

    call = service.call_of("203")
    missed = _call_of(fake, call.key)
    assert missed["Call_Type"] == "Missed"
    assert "Call_Duration" not in missed
    assert missed["Owner"] == {"id": org.luca}  # found by e-mail
    assert (missed["What_Id"], missed["$se_module"]) == ({"id": org.paolo}, "Leads")


def test_too_many_requests_are_waited_out_without_duplicates(e2e: LivePbx) -> None:
    service, sim, fake = e2e.service, e2e.sim, e2e.crm.fake
    fake.rate_limit_next(f"POST {UPSERT}", times=2, retry_after="1")
    play(sim, find_scenario("inbound-answered"), realtime=False)
    assert e2e.events_accepted()
    call = service.call_of("201")
    wait_until(lambda: service.delivery_of(call.key, "zoho").state == "done", "the delivery", 60)
    assert service.delivery_of(call.key, "zoho").attempts == 3
    assert _call_of(fake, call.key)["Who_Id"] == {"id": e2e.crm.anna}
    writes = [r.at for r in fake.requests_to("POST", UPSERT)]
    assert len(writes) == 3
    # Never sooner than Zoho's Retry-After, whatever the small core backoff says.
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(writes))


def test_click_to_call_from_a_lead_is_one_outbound_call_on_the_lead(e2e: LivePbx) -> None:
    service, org = e2e.service, e2e.crm
    crm = {"connector": "zoho", "record_type": "Leads", "record_id": org.lead}
    key = e2e.click_to_call(ANNA_NUMBER, crm).key
    wait_until(lambda: len(org.fake.calls()) == 1, "the click-to-call's Calls record")
    assert service.wait_idle()
    record = _call_of(org.fake, key)
    assert record["Call_Type"] == "Outbound"
    assert record["Outgoing_Call_Status"] == "Completed"
    assert record["Dialled_Number"] == "+390612345678"
    # On the clicked Lead, not on Anna (whose number it is).
    assert (record["What_Id"], record["$se_module"]) == ({"id": org.lead}, "Leads")
    assert "Who_Id" not in record
    assert record["Owner"] == {"id": org.mario}
