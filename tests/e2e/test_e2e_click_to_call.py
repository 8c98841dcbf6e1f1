"""Click-to-call from a CRM record, end to end: ``POST /v1/calls`` with the record, the
simulator's CallReq carrying the returned external id, the agent's stream following the
call, and the one activity landing on the clicked record even when the number is shared."""

from __future__ import annotations

import httpx

from callbridge.demo import Demo
from callbridge.testing import SseMessage, SseReader, pops_of, wait_until


def test_click_to_call_lands_on_the_clicked_record(demo: Demo) -> None:
    # Two contacts share the Bianchi Logistica switchboard: a number lookup is ambiguous,
    # so only the CRM context can put the activity on Luca's record.
    shared = demo.directory.find("+39 02 8765 4321")
    assert len(shared) == 2
    luca = next(c for c in shared if c.name == "Luca Bianchi")
    reader = SseReader(demo.url, "203", demo.api_token).start()
    try:
        response = httpx.post(
            f"{demo.url}/v1/calls",
            headers={"Authorization": f"Bearer {demo.api_token}"},
            json={
                "agent": "203",
                "number": "02 8765 4321",
                "crm": {
                    "connector": "directory",
                    "record_type": "contact",
                    "record_id": str(luca.id),
                },
            },
            timeout=30,
        )
        assert response.status_code == 202, response.text
        answer = response.json()
        external_id = answer["external_id"]
        assert answer["state"] == "sent"

        # The simulator received a CallReq for Luca Verdi's PBX user with that external id.
        requests = [e for e in demo.sim.soap_log if e.command == "CallReq"]
        sent = [e for e in requests if e.fields.get("call_req_ext_id") == external_id]
        assert len(sent) == 1 and sent[0].ok
        assert sent[0].fields["param1"] == "auth-luca@acme"
        call = demo.sim.find_call(external_id)
        assert call is not None and call.caller_leg is not None
        user_call_id = call.caller_leg.user_call_id

        # The panel-placed call is answered by the simulated customer after a moment; end it
        # sooner from the agent's side through the API, as the panel's Hang up button does.
        reader.wait_for(
            lambda ms: any(m.data["state"] == "ringing" for m in pops_of(ms, {user_call_id})),
            "the ringing pop",
        )
        demo.sim.answer(call)
        reader.wait_for(
            lambda ms: any(m.data["state"] == "answered" for m in pops_of(ms, {user_call_id})),
            "the answered pop",
        )
        hangup = httpx.post(
            f"{demo.url}/v1/calls/{external_id}/hangup",
            headers={"Authorization": f"Bearer {demo.api_token}"},
            timeout=30,
        )
        assert hangup.status_code == 200, hangup.text
        reader.wait_for(
            lambda ms: any(m.data["state"] == "ended" for m in pops_of(ms, {user_call_id})),
            "the ended pop",
        )

        # The stream also follows the click-to-call request itself, by external id.
        def request_states(messages: list[SseMessage]) -> list[str]:
            return [
                m.data["state"]
                for m in messages
                if m.event == "call" and m.data["external_id"] == external_id
            ]

        states = request_states(
            reader.wait_for(lambda ms: "ended" in request_states(ms), "the request ended")
        )
        assert states.index("answered") < states.index("ended")
    finally:
        reader.close()

    def logged() -> bool:
        return any(
            a.call_key.endswith(":" + user_call_id) for a in demo.directory.list_activities(1000)
        )

    wait_until(logged, "the activity of the call")
    demo.engine.wait_idle(10)
    activities = [
        a for a in demo.directory.list_activities(1000) if a.call_key.endswith(":" + user_call_id)
    ]
    assert len(activities) == 1
    activity = activities[0]
    assert activity.contact_id == luca.id and activity.contact_name == "Luca Bianchi"
    assert (activity.direction, activity.outcome) == ("outbound", "answered")
    assert activity.remote_number == "+390287654321"
    state = httpx.get(
        f"{demo.url}/v1/calls/{external_id}",
        headers={"Authorization": f"Bearer {demo.api_token}"},
        timeout=30,
    ).json()
    assert state["state"] == "ended"
    assert state["crm"]["record_id"] == str(luca.id)


def test_the_api_token_acts_only_for_the_demo_agents(demo: Demo) -> None:
    response = httpx.post(
        f"{demo.url}/v1/calls",
        headers={"Authorization": f"Bearer {demo.api_token}"},
        json={"agent": "auth-callbridge@acme", "number": "+39 06 1234 5678"},
        timeout=30,
    )
    assert response.status_code == 403
    refused = httpx.post(
        f"{demo.url}/v1/calls",
        headers={"Authorization": "Bearer not-the-token-0123456789"},
        json={"agent": "201", "number": "+39 06 1234 5678"},
        timeout=30,
    )
    assert refused.status_code == 401
