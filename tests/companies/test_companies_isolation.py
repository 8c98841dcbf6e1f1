"""Isolation: a company's tokens reach its own events, calls, wrap-ups and agents only, and
a CRM outage in one company does not hold up another's pops."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from companies_support import RELEASE, RecorderPlugin, one_call, reset, seen, send

from callbridge.models import Originate
from callbridge.testing import (
    CallbridgeEnv,
    CompaniesFile,
    EventFactory,
    LiveService,
    SseReader,
    wait_until,
)


@pytest.fixture(autouse=True)
def _fresh_records() -> Iterator[None]:
    reset()
    yield
    RELEASE.set()  # no lookup thread left hanging
    reset()


@pytest.fixture
def two(callbridge_env: CallbridgeEnv, companies: CompaniesFile) -> CompaniesFile:
    companies.add("acme", "1", plugins={"recorder": {"label": "acme"}})
    companies.add("beta", "2", plugins={"recorder": {"label": "beta"}})
    companies.write()
    return companies


def test_a_token_cannot_send_events_for_another_company(two: CompaniesFile) -> None:
    acme, beta = two["acme"], two["beta"]
    events = EventFactory(company_id="2")  # beta's id...
    with LiveService(extra_plugins=[RecorderPlugin]) as service:
        forged = send(service, events.incoming(), acme.ingress_token)  # ...under acme's token
        assert forged.status_code == 403
        assert "company_id 2 is not the id of company acme (1), whose token this is" in forged.text
        rejected = service.journal.list_rejected(5)
        assert rejected and "is not the id of company acme" in rejected[0].reason
        assert acme.ingress_token not in rejected[0].raw  # kept without the secret
        assert service.journal.events_after(0, 10) == []  # nothing accepted
        # Without the parameter, the token's company fills it in; the right pair is taken.
        bare = EventFactory(company_id=None).incoming()
        assert send(service, bare, acme.ingress_token).status_code == 200
        assert send(service, events.incoming(), beta.ingress_token).status_code == 200
        stored = [s.event for s in service.journal.events_after(0, 10)]
        assert [(e.company, e.company_id) for e in stored] == [("acme", "1"), ("beta", "2")]
        assert send(service, events.incoming(), "not-a-token").status_code == 403


def test_api_tokens_reach_their_own_company_only(two: CompaniesFile) -> None:
    acme, beta = two["acme"], two["beta"]
    with LiveService(extra_plugins=[RecorderPlugin]) as service:
        # Both companies have an extension 201: each token streams its own agent's pops.
        with (
            SseReader(service.url, "201", acme.api_token) as acme_201,
            SseReader(service.url, "201", beta.api_token) as beta_201,
        ):
            beta_id = one_call(service, EventFactory(company_id="2"), beta.ingress_token)
            beta_201.wait_for(lambda m: any(x.event == "pop" for x in m), "beta's pop")
            assert service.wait_idle(60)
            assert not [m for m in acme_201.events() if m.event == "pop"]
        beta_key = f"beta.2:{beta_id}"
        service.journal.create_originate(
            Originate(
                external_id="beta-click-1",
                user="auth-201@beta",
                extension="201",
                number="+390212345678",
                created_at=datetime.now(UTC),
                company="beta",
            )
        )
        with service.api(acme.api_token) as as_acme, service.api(beta.api_token) as as_beta:
            # Reading B's placed call, its wrap-up, or acting on its call: "no such call".
            assert as_acme.get("/v1/calls/beta-click-1").status_code == 404
            assert as_beta.get("/v1/calls/beta-click-1").status_code == 200
            assert as_acme.get(f"/v1/calls/{beta_key}/wrap-up").status_code == 404
            assert as_beta.get(f"/v1/calls/{beta_key}/wrap-up").status_code == 200
            saved = as_acme.post(f"/v1/calls/{beta_key}/wrap-up", json={"notes": "x"})
            assert saved.status_code == 404
            # Beta's own connector, by the name its CRM page knows; acme's is unknown here.
            record = {"connector": "recorder", "record_type": "Contact", "record_id": "r1"}
            foreign = {**record, "connector": "directory"}
            path = f"/v1/calls/{beta_key}/wrap-up"
            assert as_beta.post(path, json={"notes": "x", "record": foreign}).status_code == 422
            assert as_beta.post(path, json={"notes": "x", "record": record}).status_code == 201
            # By its instance name (what the panel lists) it is the same record of the plugin.
            instance = {**record, "connector": "recorder@beta"}
            assert as_beta.post(path, json={"notes": "y", "record": instance}).status_code == 201
            assert as_acme.post(f"/v1/calls/{beta_id}/hangup").status_code == 404
            # Placing a call as B's agent: unknown in acme.
            placed = as_acme.post(
                "/v1/calls", json={"agent": "auth-201@beta", "number": "0212345678"}
            )
            assert placed.status_code == 422 and "in company acme" in placed.text
            # B's CRM instance is not even named to A's token.
            found = as_acme.get(
                "/v1/contacts/search", params={"connector": "recorder@beta", "q": "x"}
            )
            assert found.status_code == 404
        wrapup = service.journal.get_wrapup(beta_key)
        assert wrapup is not None and wrapup.revision == 2  # beta's own, twice
        assert wrapup.record is not None and wrapup.record.connector == "recorder"
        # Acme's PBX echoing beta's external id moves nothing of beta's request.
        echo = EventFactory(company_id="1").outgoing(ext_id="beta-click-1")
        assert send(service, echo, acme.ingress_token).status_code == 200
        assert service.wait_idle(60)
        untouched = service.journal.get_originate("beta-click-1")
        assert untouched is not None
        assert (untouched.state, untouched.call_key, untouched.user_call_id) == (
            "requested",
            None,
            None,
        )
        acme_calls = [c for c in service.journal.list_calls(10) if c.company == "acme"]
        assert [c.originate for c in acme_calls] == [None]


def test_a_stalled_crm_in_one_company_does_not_hold_up_another(
    callbridge_env: CallbridgeEnv, companies: CompaniesFile
) -> None:
    # A long budget: without isolation, B's pop would wait behind A's stalled lookups.
    callbridge_env.set(CALLBRIDGE_DISPATCH__LOOKUP_BUDGET="90", CALLBRIDGE_DISPATCH__WORKERS="4")
    companies.add("acme", "1", plugins={"recorder": {"label": "acme", "stall": True}})
    companies.add("beta", "2", plugins={"recorder": {"label": "beta"}})
    companies.write()
    acme, beta = companies["acme"], companies["beta"]
    acme_events = EventFactory(company_id="1", first_call_id=0x1000)
    beta_events = EventFactory(company_id="2", first_call_id=0x2000)
    with LiveService(extra_plugins=[RecorderPlugin]) as service:
        lanes = service.running.local_engine.dispatcher.lanes
        acme_id = one_call(service, acme_events, acme.ingress_token, ended=False)
        wait_until(lambda: seen("acme", "lookup_contact"), "acme's lookup to hang")
        # Beta's ring on another lane than acme's stalled one (the lane is per call).
        beta_ring = beta_events.incoming()
        while lanes.index("2", beta_ring.event.call_id) == lanes.index("1", acme_id):  # type: ignore[union-attr]
            beta_ring = beta_events.incoming()
        with SseReader(service.url, "201", beta.api_token) as beta_201:
            assert send(service, beta_ring, beta.ingress_token).status_code == 200
            pops = beta_201.wait_for(
                lambda m: any(x.event == "pop" for x in m), "beta's pop while acme's CRM hangs"
            )
        assert not RELEASE.is_set()  # acme's CRM still hangs...
        assert not seen("acme", "screen_pop")  # ...and acme's pop still waits for it
        pop = next(m.data for m in pops if m.event == "pop")
        assert pop["contacts"]["recorder"]["name"] == "beta contact"  # by plugin name
        RELEASE.set()
        wait_until(lambda: seen("acme", "screen_pop"), "acme's pop once its CRM answers")


def _skipped(service: LiveService) -> float:
    """``callbridge_lookups_total{plugin="recorder@acme",result="skipped"}`` now."""
    text = httpx.get(f"{service.url}/metrics", params={"company": "acme"}, trust_env=False).text
    for line in text.splitlines():
        if line.startswith('callbridge_lookups_total{plugin="recorder@acme",result="skipped"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_crm_that_hangs_is_not_waited_for_again_until_it_answers(
    callbridge_env: CallbridgeEnv, companies: CompaniesFile
) -> None:
    callbridge_env.set(CALLBRIDGE_DISPATCH__LOOKUP_BUDGET="0.5")
    companies.add("acme", "1", plugins={"recorder": {"label": "acme", "stall": True}})
    companies.add("beta", "2", plugins={"recorder": {"label": "beta"}})
    companies.write()
    acme = companies["acme"]
    events = EventFactory(company_id="1")
    with LiveService(extra_plugins=[RecorderPlugin]) as service:
        before = _skipped(service)
        with SseReader(service.url, "201", acme.api_token) as acme_201:
            for count in range(1, 5):
                remote = f"+39021234567{count}"  # another caller each time
                assert (
                    send(service, events.incoming(remote=remote), acme.ingress_token).status_code
                    == 200
                )
                acme_201.wait_for(
                    lambda m, n=count: sum(x.event == "pop" for x in m) == n, f"acme's pop {count}"
                )
        assert not RELEASE.is_set()
        # The first missed the budget; the next three were asked but not waited for.
        assert _skipped(service) - before == 3
        assert len(seen("acme", "lookup_contact")) == 4
        RELEASE.set()
        assert service.wait_idle(60)
