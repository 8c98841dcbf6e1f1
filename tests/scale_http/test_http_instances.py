"""Two ``callbridge serve --role http`` instances and one ``--role engine`` on one Redis: an
agent's stream works on whichever instance it reaches, Last-Event-ID replay included; a
click-to-call placed through one instance is matched with the PBX's events arriving at the
other; an instance killed with -9 loses nothing (everything it acked is in Redis)."""

from __future__ import annotations

from pathlib import Path

import httpx
from http_scale_support import agent_stream, cluster, pop_states, post_event
from server_support import API_TOKEN, INGRESS_TOKEN, wait_until
from service_support import Service, call_events

from callbridge.sim import HttpSink, Simulator

ALL_POPS = ["ringing", "answered", "ended"]
#: Streams read the journal at each heartbeat anyway: with two minutes, a pop that arrives
#: within the tests' 30 s came through Redis's doorbell, not through a periodic re-read.
SLOW_HEARTBEAT = {"CALLBRIDGE_SERVER__HEARTBEAT": "120"}


def call_state(service: Service, external_id: str) -> str:
    """The state of a placed call as ``service`` reports it."""
    response = httpx.get(
        f"{service.url}/v1/calls/{external_id}",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    state: str = response.json()["state"]
    return state


def test_stream_on_one_instance_gets_pops_for_events_posted_to_another(tmp_path: Path) -> None:
    with cluster(tmp_path, "scale", **SLOW_HEARTBEAT) as running:
        first, second = running.first, running.second
        with Simulator(sink=HttpSink(f"{second.url}/pbx/events", token=INGRESS_TOKEN)) as sim:
            pbx = sim.pbx_settings()
            assert pbx.password is not None
            for service in (running.engine, first, second):
                service.env.update(
                    CALLBRIDGE_PBX__SOAP_URL=pbx.soap_url,
                    CALLBRIDGE_PBX__USER=pbx.user or "",
                    CALLBRIDGE_PBX__PASSWORD=pbx.password.get_secret_value(),
                )
            running.start()
            first_ids = stream_and_click_to_call(first, second, sim)

        first.kill()  # kill -9: its stream dies with it, nothing it held was only its own
        for params in call_events("0000AC02"):  # a call ringing after the kill
            assert post_event(second, params).status_code == 200

        replay = agent_stream(second, **{"Last-Event-ID": str(first_ids[0])})
        try:
            assert replay.status == 200
            replay.wait_for(lambda _: pop_states(replay, "0000AC02") == ALL_POPS, "pops on 2")
            ids = [m.id for m in replay.events()]
            assert ids == sorted(set(ids)), ids  # in order, none twice
            assert ids[0] > first_ids[0]
            assert pop_states(replay, "0000AC01") == ALL_POPS[1:]  # after the id it named
        finally:
            replay.close()


def stream_and_click_to_call(first: Service, second: Service, sim: Simulator) -> list[int]:
    """A stream on ``first`` gets the pops of a call posted to ``second``; a click-to-call
    placed through ``first`` is matched with its events sent to ``second``. Returns the ids
    the stream got."""
    reader = agent_stream(first)
    try:
        assert reader.status == 200
        wait_until(lambda: "connected" in reader.comments(), "the stream on instance 1")
        for params in call_events("0000AC01"):
            response = post_event(second, params)
            assert response.status_code == 200, response.text
        reader.wait_for(lambda _: pop_states(reader, "0000AC01") == ALL_POPS, "pops on 1")
        ids = [m.id for m in reader.events() if m.id is not None]
    finally:
        reader.close()
    placed = httpx.post(
        f"{first.url}/v1/calls",
        json={"agent": "201", "number": "+39 02 8765 4321"},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=30,
    )
    assert placed.status_code == 202, placed.text
    external_id = placed.json()["external_id"]
    sim.flush()
    for service in (first, second):
        wait_until(
            lambda s=service: call_state(s, external_id) in ("ringing", "answered"),
            f"the placed call matched, seen from {service.url}",
        )
    return ids
