"""The whole path: the VOIspeed simulator -> callbridge over HTTP -> Salesforce (the fake org).

callbridge runs as ``callbridge serve`` runs it (settings from ``CALLBRIDGE_*`` variables,
``build`` loading the connector through its entry point, uvicorn on a real port); the
simulator sends its events to ``/pbx/events`` with the ingress token and answers callbridge's
SOAP CallReq; the real simple-salesforce client talks HTTPS to the fake org. Nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sf_fake import FakeOrg

from callbridge.testing import (
    API_TOKEN,
    LivePbx,
    find_scenario,
    play,
    wait_until,
)

ANNA_NUMBER = "+39 06 1234 5678"  # the caller of the built-in inbound-answered scenario
PAOLO_NUMBER = "+39 02 8765 4321"  # the caller of the built-in inbound-missed scenario


@dataclass
class Org:
    """The fake org's records the scenarios meet."""

    fake: FakeOrg
    account: str
    anna: str
    paolo: str
    bruno: str
    mario: str
    luca: str


@pytest.fixture
def records(org: FakeOrg) -> Org:
    account = org.insert("Account", Name="Neri Costruzioni", Phone="+39 06 9999 0000")
    return Org(
        fake=org,
        account=account,
        anna=org.insert(
            "Contact", FirstName="Anna", LastName="Neri", Phone=ANNA_NUMBER, AccountId=account
        ),
        paolo=org.insert(
            "Contact", FirstName="Paolo", LastName="Gialli", MobilePhone="02 87654321"
        ),
        bruno=org.insert("Contact", FirstName="Bruno", LastName="Viola", Phone="+39 011 555 0101"),
        mario=org.insert("User", Username="mario@acme.example", Extension="201", IsActive=True),
        luca=org.insert("User", Username="luca@acme.example", Extension="203", IsActive=True),
    )


@pytest.fixture
def e2e(records: Org, sf_ca_file: Path, live_pbx: Callable[..., LivePbx]) -> LivePbx:
    """callbridge configured only through the environment, as a user configures it."""
    settings = {
        "CALLBRIDGE_SALESFORCE_SESSION_ID": records.fake.new_session(),
        "CALLBRIDGE_SALESFORCE_INSTANCE_URL": records.fake.url,
        "CALLBRIDGE_SALESFORCE_CA_BUNDLE": str(sf_ca_file),
        "CALLBRIDGE_SALESFORCE_API_VERSION": records.fake.version,
        # 201 by the explicit map; 203 by User.Extension (the default owner source).
        "CALLBRIDGE_SALESFORCE_OWNER_MAP": f"201={records.mario}",
        # A short retry hint after an outage (default 300 s), so that a restarted
        # service retries a pending delivery within the test.
        "CALLBRIDGE_SALESFORCE_BACKOFF_OUTAGE": "5",
    }
    return live_pbx(settings, plugin="salesforce", crm=records)


def _call_key(task: dict[str, Any]) -> str:
    """The call key in a Task's CallObject (``callbridge:<key>@<start>:salesforce``)."""
    call_object = str(task["CallObject"])
    assert call_object.startswith("callbridge:"), call_object
    assert call_object.endswith(":salesforce"), call_object
    return call_object.removeprefix("callbridge:").rpartition("@")[0]


def _task_of(org: FakeOrg, key: str) -> dict[str, Any]:
    """The one Task of the call with this key."""
    found = [t for t in org.tasks() if _call_key(t) == key]
    assert len(found) == 1, f"expected one Task of call {key}, got {org.tasks()}"
    return found[0]


def _lightning(org: FakeOrg, object_name: str, record_id: str) -> str:
    """The record URL the connector derives from the instance URL (no My Domain here)."""
    return f"{org.url}/lightning/r/{object_name}/{record_id}/view"


def test_inbound_answered_and_missed_end_as_tasks_and_the_pop_links_the_record(
    e2e: LivePbx,
) -> None:
    service, rec = e2e.service, e2e.crm
    org = rec.fake
    pop = e2e.play_inbound_pair("salesforce")

    # The pop reached the agent's stream while the phone rang, with the Lightning URL.
    contact = pop["contacts"]["salesforce"]
    assert pop["state"] == "ringing"
    assert contact["record_id"] == rec.anna
    assert contact["record_type"] == "Contact"
    assert contact["url"] == _lightning(org, "Contact", rec.anna)

    wait_until(lambda: len(org.tasks()) == 2, "two Tasks")
    assert service.wait_idle()

    call = service.call_of("201")
    task = _task_of(org, call.key)
    delivery = service.delivery_of(call.key, "salesforce")
    assert delivery.state == "done"
    assert task["TaskSubtype"] == "Call"
    assert task["CallType"] == "Inbound"
    assert task["CallDisposition"] == "Answered"
    # The core keeps milliseconds; Salesforce takes whole seconds, rounded to the nearest.
    assert task["CallDurationInSeconds"] == (delivery.payload["duration_ms"] + 500) // 1000
    assert task["CallDurationInSeconds"] >= 1  # answer -> hang-up took about two seconds
    assert task["WhoId"] == rec.anna  # the Contact the SOSL search found
    assert task["WhatId"] == rec.account  # and its Account
    assert task["OwnerId"] == rec.mario  # CALLBRIDGE_SALESFORCE_OWNER_MAP
    assert task["Status"] == "Completed"
    assert "+390612345678" in task["Subject"]

    call = service.call_of("203")
    task = _task_of(org, call.key)
    assert task["CallType"] == "Inbound"
    assert task["CallDisposition"] == "Missed"
    assert task["CallDurationInSeconds"] == 0
    assert task["WhoId"] == rec.paolo  # found by the mobile number
    assert task["OwnerId"] == rec.luca  # User.Extension = 203


def test_click_to_call_is_one_outbound_task_on_the_clicked_record(e2e: LivePbx) -> None:
    service, sim, rec = e2e.service, e2e.sim, e2e.crm
    crm = {"connector": "salesforce", "record_type": "Contact", "record_id": rec.bruno}
    # Anna's number, clicked from Bruno's record: the Task must land on Bruno, not on the
    # Contact a number lookup would find.
    placed = e2e.click_to_call(ANNA_NUMBER, crm)
    external_id = placed.external_id
    assert placed.placed["state"] == "sent"
    requests = [e for e in sim.soap_log if e.command == "CallReq"]
    assert len(requests) == 1 and requests[0].ok
    assert requests[0].fields["call_req_ext_id"] == external_id
    assert requests[0].fields["param1"] == "auth-mario@acme"
    org = rec.fake
    wait_until(lambda: len(org.tasks()) == 1, "the click-to-call Task")
    assert service.wait_idle()

    task = org.tasks()[0]
    assert task["CallType"] == "Outbound"
    assert task["CallDisposition"] == "Answered"
    assert task["WhoId"] == rec.bruno
    assert "WhatId" not in task  # Bruno has no Account
    assert task["OwnerId"] == rec.mario
    assert _call_key(task) == placed.key
    assert external_id in task["Description"]
    assert service.delivery_of(_call_key(task), "salesforce").state == "done"


def test_restart_while_a_delivery_is_pending_still_gives_one_task(e2e: LivePbx) -> None:
    """The Task is created but Salesforce's answer is a 503: callbridge cannot know it
    exists, keeps the delivery pending and is stopped; the next run finds the Task by its
    CallObject instead of creating a second one."""
    service, sim, rec = e2e.service, e2e.sim, e2e.crm
    org = rec.fake
    org.fail("/sobjects/Task/", 503, "SERVER_UNAVAILABLE", "Server unavailable", after=True)

    play(sim, find_scenario("inbound-answered"), realtime=False)
    assert e2e.events_accepted()
    wait_until(lambda: len(org.tasks()) == 1, "the Task (whose answer was lost)")
    call = service.call_of("201")
    # Stopped with the work pending, the Task already in Salesforce.
    pending = e2e.stop_with_delivery_pending("salesforce")
    assert (pending.state, pending.attempts) == ("pending", 1)
    assert "SERVER_UNAVAILABLE" in (pending.last_error or "")

    service.start()  # same port, same data directory, the org healthy again
    wait_until(
        lambda: service.delivery_of(call.key, "salesforce").state == "done",
        "the retried delivery",
        60,
    )
    delivery = service.delivery_of(call.key, "salesforce")
    assert delivery.attempts == 2
    (task,) = org.tasks()
    assert _call_key(task) == call.key
    assert delivery.result is not None and delivery.result["record_id"] == task["Id"]
    assert org.count("POST", "/sobjects/Task/") == 1  # looked up by CallObject, not re-created


def test_a_delivery_retried_after_a_restart_writes_the_whole_task(e2e: LivePbx) -> None:
    """Salesforce refuses the first create (503, nothing written); the service restarts; the
    retry in the new process writes the Task with everything the first run knew: the Contact
    and its Account, though the new process never searched for the caller."""
    service, sim, rec = e2e.service, e2e.sim, e2e.crm
    org = rec.fake
    org.fail("/sobjects/Task/", 503, "SERVER_UNAVAILABLE", "Server unavailable", method="POST")

    play(sim, find_scenario("inbound-answered"), realtime=False)
    assert e2e.events_accepted()
    call = service.call_of("201")
    assert e2e.stop_with_delivery_pending("salesforce").attempts == 1  # the refused attempt
    assert org.tasks() == []

    service.start()
    wait_until(
        lambda: service.delivery_of(call.key, "salesforce").state == "done",
        "the retried delivery",
        60,
    )
    (task,) = org.tasks()
    assert _call_key(task) == call.key
    assert task["WhoId"] == rec.anna
    assert task["WhatId"] == rec.account
    assert task["OwnerId"] == rec.mario
    assert org.count("GET", "/search/") == 1  # the lookup of the first run only


def test_a_search_refused_while_ringing_is_done_again_before_the_task(e2e: LivePbx) -> None:
    """REQUEST_LIMIT_EXCEEDED on the ring's SOSL: the Task still lands on the Contact."""
    service, rec = e2e.service, e2e.crm
    org = rec.fake
    org.fail("/search/", 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", 1)
    play(e2e.sim, find_scenario("inbound-missed"), realtime=False)
    assert e2e.events_accepted()
    wait_until(lambda: len(org.tasks()) == 1, "the Task")
    assert service.wait_idle()
    call = service.call_of("203")
    task = _task_of(org, call.key)
    assert task["WhoId"] == rec.paolo  # searched again before logging, and found
    delivery = service.delivery_of(call.key, "salesforce")
    assert delivery.state == "done"
    assert delivery.payload["lookups"]["salesforce"] == "unsettled"  # as the call ended
    assert org.count("GET", "/search/") == 2


def test_the_agents_wrapup_moves_an_ambiguous_task_once_per_revision(e2e: LivePbx) -> None:
    service, sim, rec = e2e.service, e2e.sim, e2e.crm
    org = rec.fake
    # Anna's colleague answers the same switchboard number: the lookup is ambiguous.
    org.insert("Contact", FirstName="Ada", LastName="Neri", Phone=ANNA_NUMBER)
    play(sim, find_scenario("inbound-answered"), realtime=False)
    wait_until(lambda: len(org.tasks()) == 1, "the Task written at hang-up")
    assert service.wait_idle()
    call = service.call_of("201")
    task = _task_of(org, call.key)
    assert "WhoId" not in task and "Several records match" in str(task["Description"])
    anna = {"connector": "salesforce", "record_type": "Contact", "record_id": rec.anna}
    url = f"/v1/calls/{call.key}/wrap-up"
    with service.api(API_TOKEN) as api:
        body = {"notes": "Anna, not Ada", "outcome": "Interested", "record": anna}
        assert api.post(url, json={**body, "revision": 1}).status_code == 201
        wait_until(lambda: _task_of(org, call.key).get("WhoId") == rec.anna, "moved to Anna")
        assert api.post(url, json={**body, "revision": 1}).status_code == 200  # a repeat
        stale = api.post(url, json={**body, "notes": "other", "revision": 1})
        assert stale.status_code == 409
        again = api.post(url, json={**body, "notes": "Anna: send the quote", "revision": 2})
        assert again.status_code == 201
        wait_until(lambda: "send the quote" in str(_task_of(org, call.key)["Description"]), "rev 2")
    assert service.wait_idle()
    task = _task_of(org, call.key)
    assert (task["WhoId"], task["WhatId"]) == (rec.anna, rec.account)
    assert task["CallDisposition"] == "Interested"
    assert str(task["Description"]).startswith("Notes (wrap-up 2):\nAnna: send the quote")
    assert org.count("PATCH", f"/sobjects/Task/{task['Id']}") == 2
    assert len(org.tasks()) == 1
