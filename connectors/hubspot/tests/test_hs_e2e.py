"""The whole path: the VOIspeed simulator -> callbridge over HTTP -> HubSpot (the fake account).

callbridge runs as ``callbridge serve`` runs it (settings from ``CALLBRIDGE_*`` variables,
``build`` loading the connector through its entry point, uvicorn on a real port); the
simulator sends its events to ``/pbx/events`` with the ingress token and answers callbridge's
SOAP CallReq; the real hubspot-api-client talks to the fake HubSpot. Nothing is mocked.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hs_fake import TOKEN, FakeHubSpot

from callbridge.testing import (
    SQLITE_FILE_NAME,
    CallbridgeEnv,
    FanoutSink,
    HttpSink,
    LiveService,
    MemorySink,
    Simulator,
    SqliteJournal,
    SseMessage,
    SseReader,
    cli_main,
    find_scenario,
    play,
    wait_until,
)

INGRESS_TOKEN = "e2e-ingress-token-0123456789"
API_TOKEN = "e2e-api-token-0123456789"

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


@dataclass
class E2E:
    """A running service, the simulator sending to it, and the account behind it."""

    service: LiveService
    sim: Simulator
    sink: HttpSink
    sent: MemorySink
    account: Account
    data_dir: Path

    def events_accepted(self) -> bool:
        """Every event the simulator sent was accepted by the ingress (2xx)."""
        self.sim.flush()
        return all(d.ok for d in self.sink.deliveries)


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
def e2e(account: Account, callbridge_env: CallbridgeEnv) -> Iterator[E2E]:
    """callbridge configured only through the environment, as a user configures it."""
    service = LiveService()  # its port is reserved now: the simulator's sink needs the URL
    sink = HttpSink(f"{service.url}/pbx/events", token=INGRESS_TOKEN)
    sent = MemorySink()  # the same events, kept so that a test can send them again
    try:
        with Simulator(sink=FanoutSink(sink, sent)) as sim:
            callbridge_env.set(
                CALLBRIDGE_INGRESS_TOKEN=INGRESS_TOKEN,
                CALLBRIDGE_SERVER__API_TOKENS=f"{API_TOKEN}:*",
                CALLBRIDGE_SERVER__HEARTBEAT="0.5",
                CALLBRIDGE_PBX__SOAP_URL=sim.url,
                CALLBRIDGE_PBX__USER="auth-callbridge@acme",
                CALLBRIDGE_PBX__PASSWORD="callbridge",
                CALLBRIDGE_PBX__AGENTS="201=auth-mario@acme,203=auth-luca@acme",
                CALLBRIDGE_DISPATCH__WORKERS="2",
                CALLBRIDGE_DISPATCH__BACKOFF_INITIAL="0.05",
                CALLBRIDGE_DISPATCH__BACKOFF_MAX="0.2",
                CALLBRIDGE_HUBSPOT_ACCESS_TOKEN=TOKEN,
                CALLBRIDGE_HUBSPOT_API_HOST=account.fake.url,
                # 201 by owner id; 203 by e-mail through the owners API.
                CALLBRIDGE_HUBSPOT_OWNERS=f"201={account.mario}",
                CALLBRIDGE_HUBSPOT_OWNER_EMAILS="203=luca@acme.example",
            )
            service.start()
            assert service.plugin_states()["hubspot"] == "active"
            yield E2E(service, sim, sink, sent, account, callbridge_env.data_dir)
    finally:
        service.stop()


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


def _has_hs_url(message: SseMessage) -> bool:
    contact = (message.data.get("contacts") or {}).get("hubspot") or {}
    return message.event == "pop" and bool(contact.get("url"))


def _creates(fake: FakeHubSpot) -> list[float]:
    with fake.lock:
        return [r.at for r in fake.requests if r.method == "POST" and r.path == CALLS]


def test_inbound_answered_and_missed_end_as_engagements_and_the_pop_links_the_contact(
    e2e: E2E,
) -> None:
    service, sim, acc = e2e.service, e2e.sim, e2e.account
    fake = acc.fake
    with SseReader(service.url, "201", API_TOKEN) as stream:
        # Real time at double speed, so the answered call lasts about two seconds.
        play(sim, find_scenario("inbound-answered"), speed=2.0)
        messages = stream.wait_for(
            lambda ms: any(map(_has_hs_url, ms)), "the pop with the HubSpot URL"
        )
    pop = next(m.data for m in messages if _has_hs_url(m))
    play(sim, find_scenario("inbound-missed"), realtime=False)
    assert e2e.events_accepted()

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


def test_click_to_call_is_one_outbound_engagement_on_the_clicked_record(e2e: E2E) -> None:
    service, sim, acc = e2e.service, e2e.sim, e2e.account
    fake = acc.fake
    crm = {"connector": "hubspot", "record_type": "contact", "record_id": acc.bruno}
    # Anna's number, clicked from Bruno's record: the engagement goes to Bruno only.
    with service.api(API_TOKEN) as api:
        response = api.post("/v1/calls", json={"agent": "201", "number": ANNA_NUMBER, "crm": crm})
        assert response.status_code == 202, response.text
        external_id = response.json()["external_id"]

        (request,) = [e for e in sim.soap_log if e.command == "CallReq"]
        assert request.ok and request.fields["call_req_ext_id"] == external_id
        call = sim.find_call(external_id)
        assert call is not None
        sim.answer(call)
        sim.hangup(call, by="local")
        assert e2e.events_accepted()

        wait_until(lambda: len(fake.calls) == 1, "the click-to-call engagement")
        assert service.wait_idle()
        wait_until(lambda: api.get(f"/v1/calls/{external_id}").json()["state"] == "ended", "ended")
        key = api.get(f"/v1/calls/{external_id}").json()["call"]["key"]

    engagement = _engagement_of(fake, key)
    assert engagement["hs_call_direction"] == "OUTBOUND"
    assert engagement["hs_call_status"] == "COMPLETED"
    assert engagement["hs_call_from_number"] == "201"
    assert engagement["hs_call_to_number"] == "+390612345678"
    assert engagement["hubspot_owner_id"] == acc.mario
    assert engagement["associations"] == [("contacts", acc.bruno, CONTACT_TO_CALL)]
    assert service.delivery_of(key, "hubspot").state == "done"


def test_rate_limits_are_retried_without_hammering_and_without_duplicates(e2e: E2E) -> None:
    service, sim, fake = e2e.service, e2e.sim, e2e.account.fake
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
        ("contacts", e2e.account.anna, CONTACT_TO_CALL)
    ]
    creates = _creates(fake)
    assert len(creates) == 3
    # Never sooner than the policy's window, whatever the small core backoff says.
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(creates))


def test_restart_after_an_unanswered_create_gives_no_duplicate(e2e: E2E) -> None:
    """HubSpot creates the engagement but the answer never arrives; callbridge keeps the
    delivery pending and is stopped; the next run (same data directory: journal and ledger)
    finds the engagement by its external id instead of creating a second one."""
    service, sim, fake = e2e.service, e2e.sim, e2e.account.fake
    fake.drop_next(f"POST {CALLS}")

    play(sim, find_scenario("inbound-answered"), realtime=False)
    assert e2e.events_accepted()
    wait_until(lambda: len(fake.calls) == 1, "the engagement (whose answer was lost)")
    call = service.call_of("201")
    wait_until(
        lambda: service.delivery_of(call.key, "hubspot").attempts == 1,
        "the failed attempt recorded",
    )
    service.stop()

    journal = SqliteJournal(e2e.data_dir / SQLITE_FILE_NAME)
    try:
        (pending,) = [
            d for d in journal.list_deliveries(call_keys=[call.key]) if d.plugin == "hubspot"
        ]
        assert pending.state == "pending"
    finally:
        journal.close()

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
    e2e: E2E,
) -> None:
    """429 on the ring's contact search, 403 on the owners API (scope missing).

    The search is done again before logging, so the engagement is on Paolo; the owner is
    left out (not the engagement), and ``callbridge plugins`` tells the operator why.
    """
    from click.testing import CliRunner

    service, acc = e2e.service, e2e.account
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
