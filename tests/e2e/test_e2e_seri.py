"""The SERI dialect end to end: callbridge's real HTTP service and engine against the
simulator speaking VOIspeed's integration module (events at ``/pbx/seri``, commands at
``seri_endpoint.php``): click-to-call with ``extid``/``request_id``, a ``cmd_failed`` that
settles the request, an unreadable answer that is never re-sent, and the ingress's rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from callbridge.demo import Demo
from callbridge.models import Originate
from callbridge.testing import SseReader, pops_of, wait_until
from callbridge.voispeed.events import UnknownEvent


def _place(demo: Demo, agent: str, number: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{demo.url}/v1/calls",
        headers={"Authorization": f"Bearer {demo.api_token}"},
        json={"agent": agent, "number": number, **extra},
        timeout=30,
    )


def _state(demo: Demo, external_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(
        f"{demo.url}/v1/calls/{external_id}",
        headers={"Authorization": f"Bearer {demo.api_token}"},
        timeout=30,
    ).json()
    return answer


def _requests_for(demo: Demo, external_id: str) -> list[Any]:
    return [e for e in demo.sim.seri.log if e.params.get("extid") == external_id]


def test_click_to_call_over_seri_lands_on_the_clicked_record(seri_demo: Demo) -> None:
    demo = seri_demo
    shared = demo.directory.find("+39 02 8765 4321")
    luca = next(c for c in shared if c.name == "Luca Bianchi")
    reader = SseReader(demo.url, "203", demo.api_token).start()
    try:
        crm = {"connector": "directory", "record_type": "contact", "record_id": str(luca.id)}
        response = _place(demo, "203", "02 8765 4321", crm=crm)
        assert response.status_code == 202, response.text
        external_id = response.json()["external_id"]
        assert response.json()["state"] == "sent"

        # One call_request, from the agent's extension, our external id as extid; the
        # PBX's request_id is kept on the request.
        sent = _requests_for(demo, external_id)
        assert [(e.service, e.params["ext"], e.outcome) for e in sent] == [
            ("call_request", "203", "0")
        ]
        originate = demo.running.services.journal.get_originate(external_id)
        assert originate is not None and originate.request_id == sent[0].request_id

        call = demo.sim.find_call(external_id)
        assert call is not None and call.caller_leg is not None
        user_call_id = call.caller_leg.user_call_id
        reader.wait_for(
            lambda ms: any(m.data["state"] == "ringing" for m in pops_of(ms, {user_call_id})),
            "the ringing pop",
        )
        demo.sim.answer(call)
        # Call control is the SOAP dialect's: a clear 501, nothing sent.
        hangup = httpx.post(
            f"{demo.url}/v1/calls/{external_id}/hangup",
            headers={"Authorization": f"Bearer {demo.api_token}"},
            timeout=30,
        )
        assert hangup.status_code == 501, hangup.text
        demo.sim.hangup(call, by="local", extension="203")
        reader.wait_for(
            lambda ms: any(m.data["state"] == "ended" for m in pops_of(ms, {user_call_id})),
            "the ended pop",
        )
    finally:
        reader.close()

    def mine() -> list[Any]:
        return [
            a
            for a in demo.directory.list_activities(1000)
            if a.call_key.endswith(":" + user_call_id)
        ]

    wait_until(lambda: len(mine()) == 1, "the activity of the call")
    activity = mine()[0]
    assert activity.contact_id == luca.id
    assert (activity.direction, activity.outcome) == ("outbound", "answered")
    wait_until(lambda: _state(demo, external_id)["state"] == "ended", "the request ended")


def test_cmd_failed_settles_the_click_to_call_as_failed_with_the_pbx_error(
    seri_demo: Demo,
) -> None:
    demo = seri_demo
    # The PBX accepts the request (outcome 0, a request_id), then cannot place it: a user
    # calling their own extension. It says so with cmd_failed, naming extid and request_id.
    response = _place(demo, "202", "202")
    assert response.status_code == 202, response.text
    external_id = response.json()["external_id"]
    wait_until(lambda: _state(demo, external_id)["state"] == "failed", "the request failed")
    state = _state(demo, external_id)
    assert "cannot call their own extension" in state["error"], state
    assert [e.service for e in _requests_for(demo, external_id)] == ["call_request"]


def test_cmd_failed_found_by_request_id_alone(seri_demo: Demo) -> None:
    demo = seri_demo
    journal = demo.running.services.journal
    # A request the PBX accepted (request_id R-77) and whose call never rang.
    journal.create_originate(
        Originate(
            external_id="seri-by-request-id",
            user="auth-sara@acme",
            extension="204",
            number="+39 06 555 0199",
            created_at=datetime.now(UTC),
            state="sent",
            request_id="R-77",
            company="acme",  # the demo's first company (its token places and reads it)
        )
    )
    names = demo.settings.pbx.seri
    answer = httpx.get(
        f"{demo.url}/pbx/seri",
        params={
            names.event_param: names.cmd_failed,
            "request_id": "R-77",
            "error_code": "17",
            "error_msg": "line busy",
            "token": demo.ingress_token,
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    wait_until(
        lambda: _state(demo, "seri-by-request-id")["state"] == "failed", "failed by request_id"
    )
    assert "[17] line busy" in _state(demo, "seri-by-request-id")["error"]


def test_unreadable_answer_is_unconfirmed_and_never_sent_twice(seri_demo: Demo) -> None:
    demo = seri_demo
    demo.sim.seri.answer = "html"  # a proxy's page in front of the PBX: it did act
    try:
        response = _place(demo, "201", "+39 06 555 0142")
    finally:
        demo.sim.seri.answer = "xml"
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["state"] == "unconfirmed", answer
    assert len(_requests_for(demo, answer["external_id"])) == 1
    call = demo.sim.find_call(answer["external_id"])
    assert call is not None  # the PBX did place it: the events will tell
    wait_until(lambda: _state(demo, answer["external_id"])["state"] == "ringing", "the call rings")
    demo.sim.hangup(call, by="local", extension="201")


def test_refusal_in_the_answer_is_502_and_failed(seri_demo: Demo) -> None:
    demo = seri_demo
    demo.sim.seri.fail_in_answer = True
    try:
        response = _place(demo, "201", "201", external_id="seri-refused-1")
    finally:
        demo.sim.seri.fail_in_answer = False
    assert response.status_code == 502, response.text
    assert "outcome 1" in response.text
    assert _state(demo, "seri-refused-1")["state"] == "failed"


def test_seri_ingress_tokens_unknown_events_and_malformed(seri_demo: Demo) -> None:
    demo = seri_demo
    url = f"{demo.url}/pbx/seri"
    module = demo.settings.pbx.seri_token
    assert module is not None
    base = {"event_name": "call_parked", "ext": "201", "slot": "7"}

    def get(params: list[tuple[str, str]]) -> httpx.Response:
        return httpx.get(url, params=params, timeout=30)

    items = list(base.items())
    assert get(items).status_code == 401
    assert get([*items, ("token", module.get_secret_value())]).status_code == 403
    assert get([*items, ("token", "nope"), ("token", demo.ingress_token)]).status_code == 403
    # Ours in the URL configured in the module, plus the module's own: accepted.
    both = [*items, ("token", demo.ingress_token), ("token", module.get_secret_value())]
    accepted = get(both)
    assert accepted.status_code == 200, accepted.text
    seq = int(accepted.text.split()[1])
    stored = next(
        e for e in demo.running.services.journal.events_after(seq - 1, 10) if e.seq == seq
    )
    assert isinstance(stored.event, UnknownEvent)  # kept whole, never dropped
    assert stored.event.params["slot"] == "7"
    assert stored.event.params["cb_seri_event"] == "call_parked"
    assert "token" not in stored.raw

    # A call event without usercallid: 400 naming it, kept among rejected requests.
    bad = get([("event_name", "incoming_call"), ("ext", "201"), ("token", demo.ingress_token)])
    assert bad.status_code == 400 and "usercallid" in bad.text
    rejected = demo.running.services.journal.list_rejected(20)
    assert any("usercallid" in r.reason and "event_name=incoming_call" in r.raw for r in rejected)
