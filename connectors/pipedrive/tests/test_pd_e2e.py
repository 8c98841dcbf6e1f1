"""The whole path: the VOIspeed simulator -> callbridge over HTTP -> Pipedrive (the fake, HTTPS).

callbridge runs as ``callbridge serve`` runs it (settings from ``CALLBRIDGE_*`` variables, the
connector loaded through its entry point, uvicorn on a real port); the simulator sends its
events to ``/pbx/events`` and answers callbridge's SOAP CallReq; the connector's httpx client
talks TLS to the fake Pipedrive. Nothing is mocked.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pd_fake import API_TOKEN, FakePipedrive, error_body

from callbridge.testing import (
    CallbridgeEnv,
    FanoutSink,
    HttpSink,
    LiveService,
    MemorySink,
    Simulator,
    SseMessage,
    SseReader,
    find_scenario,
    play,
    wait_until,
)

INGRESS_TOKEN = "e2e-ingress-token-0123456789"
SERVICE_TOKEN = "e2e-api-token-0123456789"
CALL_LOGS = "/v1/callLogs"


@dataclass
class Company:
    fake: FakePipedrive
    anna: int
    paolo: int
    rossi_srl: int
    mario: int
    luca: int


@dataclass
class E2E:
    service: LiveService
    sim: Simulator
    sink: HttpSink
    company: Company
    data_dir: Path

    def events_accepted(self) -> bool:
        self.sim.flush()
        return all(d.ok for d in self.sink.deliveries)


@pytest.fixture
def company(fake: FakePipedrive) -> Company:
    org = fake.add_org("Neri Srl")
    return Company(
        fake=fake,
        anna=fake.add_person("Anna Neri", "+39 06 1234 5678", org_id=org),  # inbound-answered
        paolo=fake.add_person("Paolo Gialli", "02 87654321"),  # inbound-missed
        rossi_srl=org,
        mario=fake.add_user("mario@acme.example", "Mario Rossi"),
        luca=fake.add_user("luca@acme.example", "Luca Verdi"),
    )


@pytest.fixture
def e2e(company: Company, ca_file: Path, callbridge_env: CallbridgeEnv) -> Iterator[E2E]:
    service = LiveService()
    sink = HttpSink(f"{service.url}/pbx/events", token=INGRESS_TOKEN)
    try:
        with Simulator(sink=FanoutSink(sink, MemorySink())) as sim:
            callbridge_env.set(
                CALLBRIDGE_INGRESS_TOKEN=INGRESS_TOKEN,
                CALLBRIDGE_SERVER__API_TOKENS=f"{SERVICE_TOKEN}:*",
                CALLBRIDGE_SERVER__HEARTBEAT="0.5",
                CALLBRIDGE_PBX__SOAP_URL=sim.url,
                CALLBRIDGE_PBX__USER="auth-callbridge@acme",
                CALLBRIDGE_PBX__PASSWORD="callbridge",
                CALLBRIDGE_PBX__AGENTS="201=auth-mario@acme,203=auth-luca@acme",
                CALLBRIDGE_DISPATCH__WORKERS="2",
                CALLBRIDGE_DISPATCH__BACKOFF_INITIAL="0.05",
                CALLBRIDGE_DISPATCH__BACKOFF_MAX="0.2",
                CALLBRIDGE_PIPEDRIVE_COMPANY_DOMAIN="acme",
                CALLBRIDGE_PIPEDRIVE_API_TOKEN=API_TOKEN,
                CALLBRIDGE_PIPEDRIVE_API_URL=company.fake.url,
                CALLBRIDGE_PIPEDRIVE_CA_BUNDLE=str(ca_file),
                # 201 by user id; 203 by e-mail through the users API.
                CALLBRIDGE_PIPEDRIVE_USERS=f"201={company.mario}",
                CALLBRIDGE_PIPEDRIVE_USER_EMAILS="203=luca@acme.example",
            )
            service.start()
            assert service.plugin_states()["pipedrive"] == "active"
            yield E2E(service, sim, sink, company, callbridge_env.data_dir)
    finally:
        service.stop()


def _log_of(fake: FakePipedrive, call_key: str) -> dict[str, Any]:
    found = fake.logs_with(f"callbridge call: {call_key}")
    assert len(found) == 1, f"expected one call log for {call_key}, got {fake.call_logs}"
    return found[0]


def _has_pd_url(message: SseMessage) -> bool:
    contact = (message.data.get("contacts") or {}).get("pipedrive") or {}
    return message.event == "pop" and bool(contact.get("url"))


def test_inbound_calls_pop_the_person_and_end_as_call_logs(e2e: E2E) -> None:
    service, sim, company = e2e.service, e2e.sim, e2e.company
    fake = company.fake
    with SseReader(service.url, "201", SERVICE_TOKEN) as stream:
        play(sim, find_scenario("inbound-answered"), speed=2.0)
        messages = stream.wait_for(lambda ms: any(map(_has_pd_url, ms)), "the Pipedrive pop")
    pop = next(m.data for m in messages if _has_pd_url(m))
    play(sim, find_scenario("inbound-missed"), realtime=False)
    assert e2e.events_accepted()

    contact = pop["contacts"]["pipedrive"]
    assert contact["record_id"] == str(company.anna)
    assert contact["company"] == "Neri Srl"
    assert contact["url"] == f"https://acme.pipedrive.com/person/{company.anna}"

    wait_until(lambda: len(fake.call_logs) == 2, "two call logs")
    assert service.wait_idle()

    call = service.call_of("201")
    answered = _log_of(fake, call.key)
    delivery = service.delivery_of(call.key, "pipedrive")
    assert delivery.state == "done"
    assert delivery.result is not None and delivery.result["record_id"] == answered["id"]
    assert answered["outcome"] == "connected"
    assert (answered["from_phone_number"], answered["to_phone_number"]) == ("+390612345678", "201")
    assert answered["duration"] == str(delivery.payload["duration_s"])
    assert (answered["person_id"], answered["org_id"]) == (company.anna, company.rossi_srl)
    assert answered["user_id"] == company.mario

    missed = _log_of(fake, service.call_of("203").key)
    assert missed["outcome"] == "no_answer" and missed["duration"] == "0"
    assert missed["person_id"] == company.paolo and "org_id" not in missed
    assert missed["user_id"] == company.luca  # found by e-mail


def test_click_to_call_from_a_deal_logs_on_the_deal(e2e: E2E) -> None:
    service, sim, fake = e2e.service, e2e.sim, e2e.company.fake
    crm = {"connector": "pipedrive", "record_type": "deal", "record_id": "7001"}
    with service.api(SERVICE_TOKEN) as api:
        response = api.post(
            "/v1/calls", json={"agent": "201", "number": "+39 06 1234 5678", "crm": crm}
        )
        assert response.status_code == 202, response.text
        external_id = response.json()["external_id"]
        call = sim.find_call(external_id)
        assert call is not None
        sim.answer(call)
        sim.hangup(call, by="local")
        assert e2e.events_accepted()
        wait_until(lambda: len(fake.call_logs) == 1, "the click-to-call call log")
        assert service.wait_idle()
        wait_until(lambda: api.get(f"/v1/calls/{external_id}").json()["state"] == "ended", "end")
        key = api.get(f"/v1/calls/{external_id}").json()["call"]["key"]
    log = _log_of(fake, key)
    assert log["deal_id"] == 7001
    assert log["person_id"] == e2e.company.anna  # the number's person, found at ring time
    assert (log["from_phone_number"], log["to_phone_number"]) == ("201", "+390612345678")
    assert log["outcome"] == "connected"


def test_a_rate_limited_create_waits_for_retry_after_and_writes_once(e2e: E2E) -> None:
    service, sim, fake = e2e.service, e2e.sim, e2e.company.fake
    body = error_body("Request over limit", errorCode=429)
    headers = {"Retry-After": "1", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"}
    fake.fail_next(f"POST {CALL_LOGS}", 429, body, times=2, headers=headers)
    play(sim, find_scenario("inbound-answered"), realtime=False)
    assert e2e.events_accepted()
    call = service.call_of("201")
    wait_until(lambda: service.delivery_of(call.key, "pipedrive").state == "done", "done", 60)
    assert service.delivery_of(call.key, "pipedrive").attempts == 3
    assert len(fake.call_logs) == 1
    with fake.lock:
        creates = [r.at for r in fake.requests if r.method == "POST" and r.path == CALL_LOGS]
    assert len(creates) == 3
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(creates))


def test_restart_after_an_unanswered_create_gives_no_duplicate(e2e: E2E) -> None:
    """Pipedrive creates the call log but the answer is lost; callbridge is stopped. The
    retry (before the stop, or in the next run on the same data directory: journal and
    ledger) finds the log by the key in its note instead of creating a second one."""
    service, sim, fake = e2e.service, e2e.sim, e2e.company.fake
    fake.drop_next(f"POST {CALL_LOGS}")
    play(sim, find_scenario("inbound-answered"), realtime=False)
    assert e2e.events_accepted()
    wait_until(lambda: len(fake.call_logs) == 1, "the call log (whose answer was lost)")
    call = service.call_of("201")
    wait_until(lambda: service.delivery_of(call.key, "pipedrive").attempts >= 1, "an attempt")
    service.stop()
    service.start()
    wait_until(lambda: service.delivery_of(call.key, "pipedrive").state == "done", "done", 60)
    (log,) = fake.call_logs.values()
    assert service.delivery_of(call.key, "pipedrive").result["record_id"] == log["id"]  # type: ignore[index]
    assert fake.count("POST", CALL_LOGS) == 1
    assert fake.count("GET", CALL_LOGS) >= 1  # adopted from the list, not created again
