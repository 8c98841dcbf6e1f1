"""The kit's ``LiveService`` and ``SseReader``: real uvicorn on a real port, a real stream.

A PBX event sent to ``/pbx/events`` reaches the agent's stream as a pop; the service restarts
on the same port with the same data directory (the pop is replayed from the journal); a
stopped service refuses connections like a stopped process; a port still held at restart is
waited for rather than failing.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from callbridge.testing import CallbridgeEnv, EventFactory, LiveService, SseMessage, SseReader

INGRESS_TOKEN = "kit-live-ingress-token-0123456789"
API_TOKEN = "kit-live-api-token-0123456789"


@pytest.fixture
def service(callbridge_env: CallbridgeEnv) -> Iterator[LiveService]:
    callbridge_env.set(
        CALLBRIDGE_INGRESS_TOKEN=INGRESS_TOKEN,
        CALLBRIDGE_SERVER__API_TOKENS=f"{API_TOKEN}:201",
        CALLBRIDGE_SERVER__HEARTBEAT="0.5",
    )
    live = LiveService()
    try:
        yield live
    finally:
        live.stop()


def _send(service: LiveService, params: dict[str, str]) -> None:
    response = httpx.get(
        f"{service.url}/pbx/events", params={**params, "token": INGRESS_TOKEN}, timeout=30
    )
    assert response.is_success, response.text


def _pops(messages: list[SseMessage], call_id: str) -> list[SseMessage]:
    return [m for m in messages if m.event == "pop" and m.data["call"]["user_call_id"] == call_id]


def _refused(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=10)
    except httpx.ConnectError:
        return True
    return False


def test_start_pop_restart_on_the_same_port_and_stop(
    service: LiveService, events: EventFactory
) -> None:
    port = service.port
    assert port > 0 and service.url == f"http://127.0.0.1:{port}"
    assert not service.started and _refused(service.url)  # bound, not yet serving
    with pytest.raises(RuntimeError, match="not started"):
        _ = service.running

    service.start()
    assert httpx.get(f"{service.url}/healthz", timeout=10).status_code == 200
    assert service.plugin_states() == {
        info.name: info.state for info in service.running.services.plugins.infos
    }
    ringing = events.incoming(extension="201")
    call_id = ringing.params["call_id"]
    with SseReader(service.url, "201", API_TOKEN) as reader:
        _send(service, dict(ringing.params))
        messages = reader.wait_for(lambda ms: bool(_pops(ms, call_id)), "the ringing pop")
    (pop,) = _pops(messages, call_id)
    assert pop.data["state"] == "ringing" and pop.data["call"]["extension"] == "201"
    assert pop.id is not None and pop.data["id"] == pop.id
    assert reader.events() == messages
    assert service.wait_idle()

    service.restart()
    assert service.port == port
    assert httpx.get(f"{service.url}/healthz", timeout=10).status_code == 200
    # Same data directory: the journal of the first run is the journal of this one, and a
    # reader with the token in the query (as EventSource sends it) gets the pop replayed.
    assert any(c.user_call_id == call_id for c in service.journal.list_calls(10))
    with SseReader(service.url, "201", API_TOKEN, query_token=True) as replayed:
        again = replayed.wait_for(lambda ms: bool(_pops(ms, call_id)), "the replayed pop")
    assert _pops(again, call_id) == [pop]
    with SseReader(service.url, "201", API_TOKEN, last_event_id=pop.id) as after:
        _send(service, dict(events.answered(call_id, extension="201").params))
        later = after.wait_for(
            lambda ms: any(m.data["state"] == "answered" for m in _pops(ms, call_id)), "answered"
        )
    assert [m.data["state"] for m in _pops(later, call_id)] == ["answered"]  # nothing replayed

    service.stop()
    assert not service.started and _refused(service.url)
    service.stop()  # twice is harmless


def test_a_reader_fails_fast_when_the_service_stops_or_refuses_it(
    service: LiveService,
) -> None:
    service.start()
    reader = SseReader(service.url, "201", API_TOKEN).start()
    try:
        service.stop()
        with pytest.raises(AssertionError, match=r"stream .*while waiting for a pop"):
            reader.wait_for(lambda ms: False, "a pop", timeout=60)
    finally:
        reader.close()

    service.start()
    with pytest.raises(AssertionError, match="403"):
        SseReader(service.url, "202", API_TOKEN).start()  # the token is bound to 201
    refused = SseReader(service.url, "201", "not-the-token-0123456789")
    with pytest.raises(AssertionError, match="401"):
        refused.start()
    assert "not-the-token" not in repr(refused) and API_TOKEN not in repr(reader)


def test_a_port_still_held_at_restart_is_waited_for(service: LiveService) -> None:
    service.start()
    service.stop()
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # held by a listener
    holder.bind(("127.0.0.1", service.port))
    holder.listen()
    starting = threading.Thread(target=service.start, daemon=True)
    try:
        starting.start()
        starting.join(0.5)
        assert starting.is_alive()  # cannot have bound: the port is ours
    finally:
        holder.close()
    starting.join(60)
    assert not starting.is_alive() and service.started
    assert httpx.get(f"{service.url}/healthz", timeout=10).status_code == 200


def test_a_port_held_past_the_bind_timeout_is_a_clear_error(callbridge_env: CallbridgeEnv) -> None:
    callbridge_env.set(CALLBRIDGE_INGRESS_TOKEN=INGRESS_TOKEN)
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        with pytest.raises(OSError, match="in use"):
            LiveService(holder.getsockname()[1], bind_timeout=0.2)
    finally:
        holder.close()
