"""The whole path: the VOIspeed simulator -> callbridge over HTTP -> HubSpot (the fake account).

callbridge runs as ``callbridge serve`` runs it (settings from ``CALLBRIDGE_*`` variables,
``build`` loading the connector through its entry point, uvicorn on a real port); the
simulator sends its events to ``/pbx/events`` with the ingress token and answers callbridge's
SOAP CallReq; the real hubspot-api-client talks to the fake HubSpot. Nothing is mocked.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hs_fake import TOKEN, FakeHubSpot

from callbridge.testing import (
    API_TOKEN,
    INGRESS_TOKEN,
    LivePbx,
    cli_main,
    find_scenario,
    play,
    wait_until,
)

ANNA_NUMBER = "+39 06 1234 5678"  # the caller of the built-in inbound-answered scenario
CALLS = "/crm/v3/objects/calls"
CONTACT_TO_CALL = 194


@dataclass
class Account:
    """The fake account's records the scenarios meet."""

    fake: FakeHubSpot
    anna: str
    paolo: str
    bruno: str
    mario: str
    luca: str


@pytest.fixture
def account(fake: FakeHubSpot) -> Account:
    return Account(
        fake=fake,
        anna=fake.add_contact(firstname="Anna", lastname="Neri", phone=ANNA_NUMBER),
        paolo=fake.add_contact(firstname="Paolo", lastname="Gialli", mobilephone="02 87654321"),
        bruno=fake.add_contact(firstname="Bruno", lastname="Viola", phone="+39 011 555 0101"),
        mario=fake.add_owner("mario@acme.example", "Mario", "Rossi"),
        luca=fake.add_owner("luca@acme.example", "Luca", "Verdi"),
    )


@pytest.fixture
def e2e(account: Account, live_pbx: Callable[..., LivePbx]) -> LivePbx:
    """callbridge configured only through the environment, as a user configures it."""
    settings = {
        "CALLBRIDGE_HUBSPOT_ACCESS_TOKEN": TOKEN,
        "CALLBRIDGE_HUBSPOT_API_HOST": account.fake.url,
        # 201 by owner id; 203 by e-mail through the owners API.
        "CALLBRIDGE_HUBSPOT_OWNERS": f"201={account.mario}",
        "CALLBRIDGE_HUBSPOT_OWNER_EMAILS": "203=luca@acme.example",
    }
    return live_pbx(settings, plugin="hubspot", crm=account)


def _engagements(fake: FakeHubSpot) -> list[dict[str, Any]]:
    with fake.lock:
        return [
            {"id": cid, **c["properties"], "associations": list(c["associations"])}
            for cid, c in fake.calls.items()
        ]


def _engagement_of(fake: FakeHubSpot, call_key: str) -> dict[str, Any]:
    found = [e for e in _engagements(fake) if call_key in e.get("hs_call_body", "")]
    assert len(found) == 1, f"expected one engagement for {call_key}, got {_engagements(fake)}"
    return found[0]


def _creates(fake: FakeHubSpot) -> list[float]:
    with fake.lock:
        return [r.at for r in fake.requests if r.method == "POST" and r.path == CALLS]


def test_inbound_answered_and_missed_end_as_engagements_and_the_pop_links_the_contact(
    e2e: LivePbx,
) -> None:
    service, acc = e2e.service, e2e.crm
    fake = acc.fake
    pop = e2e.play_inbound_pair("hubspot")

    contact = pop["contacts"]["hubspot"]
    assert pop["state"] == "ringing"
    assert contact["record_id"] == acc.anna
    assert (
        contact["url"]
        == f"https://{fake.ui_domain}/contacts/{fake.portal_id}/record/0-1/{acc.anna}"
    )

    wait_until(lambda: len(fake.calls) == 2, "two call engagements")
    assert service.wait_idle()

    call = service.call_of("201")
    answered = _engagement_of(fake, call.key)
    delivery = service.delivery_of(call.key, "hubspot")
    assert delivery.state == "done"
    assert delivery.result is not None and delivery.result["record_id"] == answered["id"]
    assert answered["hs_call_direction"] == "INBOUND"
    assert answered["hs_call_status"] == "COMPLETED"
    assert answered["hs_call_duration"] == str(delivery.payload["duration_ms"])  # not rounded
    assert int(answered["hs_call_duration"]) >= 1000  # about two seconds of talk
    assert answered["hs_call_from_number"] == "+390612345678"
    assert answered["hs_call_to_number"] == "201"
    assert answered["hubspot_owner_id"] == acc.mario
    assert answered["associations"] == [("contacts", acc.anna, CONTACT_TO_CALL)]

    call = service.call_of("203")
    missed = _engagement_of(fake, call.key)
    assert missed["hs_call_direction"] == "INBOUND"
    assert missed["hs_call_status"] == "NO_ANSWER"
    assert missed["hs_call_duration"] == "0"
    assert missed["hubspot_owner_id"] == acc.luca  # found by e-mail
    assert missed["associations"] == [("contacts", acc.paolo, CONTACT_TO_CALL)]


def test_click_to_call_is_one_outbound_engagement_on_the_clicked_record(e2e: LivePbx) -> None:
    service, sim, acc = e2e.service, e2e.sim, e2e.crm
    fake = acc.fake
    crm = {"connector": "hubspot", "record_type": "contact", "record_id": acc.bruno}
    # Anna's number, clicked from Bruno's record: the engagement goes to Bruno only.
    placed = e2e.click_to_call(ANNA_NUMBER, crm)
    (request,) = [e for e in sim.soap_log if e.command == "CallReq"]
    assert request.ok and request.fields["call_req_ext_id"] == placed.external_id
    wait_until(lambda: len(fake.calls) == 1, "the click-to-call engagement")
    assert service.wait_idle()
    key = placed.key

    engagement = _engagement_of(fake, key)
    assert engagement["hs_call_direction"] == "OUTBOUND"
    assert engagement["hs_call_status"] == "COMPLETED"
    assert engagement["hs_call_from_number"] == "201"
    assert engagement["hs_call_to_number"] == "+390612345678"
    assert engagement["hubspot_owner_id"] == acc.mario
    assert engagement["associations"] == [("contacts", acc.bruno, CONTACT_TO_CALL)]
    assert service.delivery_of(key, "hubspot").state == "done"


def test_rate_limits_are_retried_without_hammering_and_without_duplicates(e2e: LivePbx) -> None:
    service, sim, fake = e2e.service, e2e.sim, e2e.crm.fake
    # Two 429s (HubSpot's body, SECONDLY policy: the connector asks for 1 s) on the create.
    fake.rate_limit_next(f"POST {CALLS}", times=2, policy="SECONDLY")

    play(sim, find_scenario("inbound-answered"), realtime=False)
    assert e2e.events_accepted()
    call = service.call_of("201")
    wait_until(lambda: service.delivery_of(call.key, "hubspot").state == "done", "the delivery", 60)

    delivery = service.delivery_of(call.key, "hubspot")
    assert delivery.attempts == 3
    assert len(fake.calls) == 1
    assert _engagement_of(fake, call.key)["associations"] == [
        ("contacts", e2e.crm.anna, CONTACT_TO_CALL)
    ]
    creates = _creates(fake)
    assert len(creates) == 3
    # Never sooner than the policy's window, whatever the small core backoff says.
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(creates))


def test_restart_after_an_unanswered_create_gives_no_duplicate(e2e: LivePbx) -> None:
    """HubSpot creates the engagement but the answer never arrives; callbridge keeps the
    delivery pending and is stopped; the next run (same data directory: journal and ledger)
    finds the engagement by its external id instead of creating a second one."""
    service, sim, fake = e2e.service, e2e.sim, e2e.crm.fake
    fake.drop_next(f"POST {CALLS}")

    play(sim, find_scenario("inbound-answered"), realtime=False)
    assert e2e.events_accepted()
    wait_until(lambda: len(fake.calls) == 1, "the engagement (whose answer was lost)")
    call = service.call_of("201")
    pending = e2e.stop_with_delivery_pending("hubspot")
    assert (pending.state, pending.attempts) == ("pending", 1)

    service.start()  # same port, same data directory, HubSpot answering again
    wait_until(
        lambda: service.delivery_of(call.key, "hubspot").state == "done", "the retried delivery", 60
    )
    (engagement,) = _engagements(fake)
    assert service.delivery_of(call.key, "hubspot").result["record_id"] == engagement["id"]  # type: ignore[index]
    assert len(_creates(fake)) == 1  # adopted through search, not created again

    # The PBX (its trigger) sending the same events again after the restart: recognised as
    # repeats, nothing new is logged.
    with service.api(API_TOKEN) as api:
        for params in e2e.sent.events:
            answer = api.get("/pbx/events", params={**params, "token": INGRESS_TOKEN})
            assert answer.is_success, answer.text
    assert service.wait_idle()
    assert len(_engagements(fake)) == 1
    assert len(_creates(fake)) == 1


def test_a_rate_limited_search_and_a_refused_owner_lookup_still_give_the_right_engagement(
    e2e: LivePbx,
) -> None:
    """429 on the ring's contact search, 403 on the owners API (scope missing).

    The search is done again before logging, so the engagement is on Paolo; the owner is
    left out (not the engagement), and ``callbridge plugins`` tells the operator why.
    """
    from click.testing import CliRunner

    service, acc = e2e.service, e2e.crm
    fake = acc.fake
    fake.rate_limit_next("POST /crm/v3/objects/contacts/search", policy="SECONDLY")
    scopes = {"crm.objects.owners.read"}
    fake.fail_next(
        "GET /crm/v3/owners",
        403,
        {
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call.",
            "category": "MISSING_SCOPES",
            "errors": [{"context": {"requiredGranularScopes": sorted(scopes)}}],
        },
        times=5,
    )
    play(e2e.sim, find_scenario("inbound-missed"), realtime=False)
    assert e2e.events_accepted()
    wait_until(lambda: len(fake.calls) == 1, "the engagement")
    assert service.wait_idle()
    call = service.call_of("203")
    engagement = _engagement_of(fake, call.key)
    assert engagement["associations"] == [("contacts", acc.paolo, CONTACT_TO_CALL)]
    assert "hubspot_owner_id" not in engagement
    delivery = service.delivery_of(call.key, "hubspot")
    assert delivery.state == "done"
    assert delivery.payload["lookups"]["hubspot"] == "unsettled"
    assert fake.count("POST", "/crm/v3/objects/contacts/search") == 2

    result = CliRunner().invoke(cli_main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    (hubspot,) = [p for p in json.loads(result.output) if p["name"] == "hubspot"]
    (note,) = hubspot["notes"]
    assert "without an owner" in note
    assert "crm.objects.owners.read" in note


def test_the_agents_wrapup_amends_the_engagement_once_per_revision(e2e: LivePbx) -> None:
    service, sim, acc = e2e.service, e2e.sim, e2e.crm
    fake = acc.fake
    play(sim, find_scenario("inbound-answered"), realtime=False)
    wait_until(lambda: len(fake.calls) == 1, "the engagement written at hang-up")
    assert service.wait_idle()
    call = service.call_of("201")
    engagement = _engagement_of(fake, call.key)
    patches = f"{CALLS}/{engagement['id']}"
    bruno = {"connector": "hubspot", "record_type": "contact", "record_id": acc.bruno}
    url = f"/v1/calls/{call.key}/wrap-up"
    with service.api(API_TOKEN) as api:
        first = {"notes": "Not Anna: Bruno", "outcome": "17b47fee-58de-441e-a44c-c6300d46f273"}
        saved = api.post(url, json={**first, "record": bruno, "revision": 1})
        assert saved.status_code == 201, saved.text
        wait_until(lambda: "Bruno" in _engagement_of(fake, call.key)["hs_call_body"], "revision 1")
        assert api.post(url, json={**first, "record": bruno, "revision": 1}).status_code == 200
        second = api.post(url, json={"notes": "Bruno, call back Monday", "record": bruno})
        assert second.status_code == 201 and second.json()["revision"] == 2
        wait_until(lambda: "Monday" in _engagement_of(fake, call.key)["hs_call_body"], "rev 2")
    assert service.wait_idle()
    amended = _engagement_of(fake, call.key)
    assert amended["hs_call_disposition"] == "17b47fee-58de-441e-a44c-c6300d46f273"
    assert amended["associations"] == [("contacts", acc.bruno, CONTACT_TO_CALL)]
    assert fake.count("PATCH", patches) == 2  # one per revision, the repeat sent nothing
    assert len(fake.calls) == 1
