"""The whole path: the VOIspeed simulator -> callbridge over HTTP -> Pipedrive (the fake, HTTPS).

callbridge runs as ``callbridge serve`` runs it (settings from ``CALLBRIDGE_*`` variables, the
connector loaded through its entry point, uvicorn on a real port); the simulator sends its
events to ``/pbx/events`` and answers callbridge's SOAP CallReq; the connector's httpx client
talks TLS to the fake Pipedrive. Nothing is mocked.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pd_fake import API_TOKEN, FakePipedrive, error_body

from callbridge.testing import (
    LivePbx,
    find_scenario,
    play,
    wait_until,
)

CALL_LOGS = "/v1/callLogs"


@dataclass
class Company:
    fake: FakePipedrive
    anna: int
    paolo: int
    rossi_srl: int
    mario: int
    luca: int


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
def e2e(company: Company, ca_file: Path, live_pbx: Callable[..., LivePbx]) -> LivePbx:
    settings = {
        "CALLBRIDGE_PIPEDRIVE_COMPANY_DOMAIN": "acme",
        "CALLBRIDGE_PIPEDRIVE_API_TOKEN": API_TOKEN,
        "CALLBRIDGE_PIPEDRIVE_API_URL": company.fake.url,
        "CALLBRIDGE_PIPEDRIVE_CA_BUNDLE": str(ca_file),
        # 201 by user id; 203 by e-mail through the users API.
        "CALLBRIDGE_PIPEDRIVE_USERS": f"201={company.mario}",
        "CALLBRIDGE_PIPEDRIVE_USER_EMAILS": "203=luca@acme.example",
    }
    return live_pbx(settings, plugin="pipedrive", crm=company)


def _log_of(fake: FakePipedrive, call_key: str) -> dict[str, Any]:
    found = fake.logs_with(f"callbridge call: {call_key}")
    assert len(found) == 1, f"expected one call log for {call_key}, got {fake.call_logs}"
    return found[0]


def test_inbound_calls_pop_the_person_and_end_as_call_logs(e2e: LivePbx) -> None:
    service, company = e2e.service, e2e.crm
    fake = company.fake
    pop = e2e.play_inbound_pair("pipedrive")

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


def test_click_to_call_from_a_deal_logs_on_the_deal(e2e: LivePbx) -> None:
    service, fake = e2e.service, e2e.crm.fake
    crm = {"connector": "pipedrive", "record_type": "deal", "record_id": "7001"}
    key = e2e.click_to_call("+39 06 1234 5678", crm).key
    wait_until(lambda: len(fake.call_logs) == 1, "the click-to-call call log")
    assert service.wait_idle()
    log = _log_of(fake, key)
    assert log["deal_id"] == 7001
    assert log["person_id"] == e2e.crm.anna  # the number's person, found at ring time
    assert (log["from_phone_number"], log["to_phone_number"]) == ("201", "+390612345678")
    assert log["outcome"] == "connected"


def test_a_rate_limited_create_waits_for_retry_after_and_writes_once(e2e: LivePbx) -> None:
    service, sim, fake = e2e.service, e2e.sim, e2e.crm.fake
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


def test_restart_after_an_unanswered_create_gives_no_duplicate(e2e: LivePbx) -> None:
    """Pipedrive creates the call log but the answer is lost; callbridge is stopped. The
    retry (before the stop, or in the next run on the same data directory: journal and
    ledger) finds the log by the key in its note instead of creating a second one."""
    service, sim, fake = e2e.service, e2e.sim, e2e.crm.fake
    fake.drop_next(f"POST {CALL_LOGS}")
    play(sim, find_scenario("inbound-answered"), realtime=False)
    assert e2e.events_accepted()
    wait_until(lambda: len(fake.call_logs) == 1, "the call log (whose answer was lost)")
    call = service.call_of("201")
    e2e.stop_with_delivery_pending("pipedrive")
    service.start()
    wait_until(lambda: service.delivery_of(call.key, "pipedrive").state == "done", "done", 60)
    (log,) = fake.call_logs.values()
    assert service.delivery_of(call.key, "pipedrive").result["record_id"] == log["id"]  # type: ignore[index]
    assert fake.count("POST", CALL_LOGS) == 1
    assert fake.count("GET", CALL_LOGS) >= 1  # adopted from the list, not created again
