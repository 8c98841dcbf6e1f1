"""The kit's live-PBX fixture: the simulator's PBX (SOAP server and events) in front of
callbridge as ``callbridge serve`` runs it, here with the built-in plugins."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from callbridge.testing import (
    SQLITE_FILE_NAME,
    CallbridgeEnv,
    FakeAnswer,
    FakeHttpService,
    FakeRequest,
    LivePbx,
    pops_of,
    wait_until,
)


def test_a_scenario_goes_from_the_pbx_to_a_pop_and_a_delivery(
    live_pbx: Callable[..., LivePbx],
) -> None:
    pbx = live_pbx({"CALLBRIDGE_SERVER__HEARTBEAT": "1"}, plugin="directory")
    assert pbx.service.plugin_states()["console"] == "active"
    with pbx.agent_events("201") as stream:
        played = pbx.play("inbound-answered", speed=4.0)
        call_ids = set(played.owners())
        messages = stream.wait_for(lambda ms: pops_of(ms, call_ids), "the pop of the call")
    assert pbx.events_accepted()
    assert len(pbx.sent.events) == len(pbx.sink.deliveries) > 0
    pop = pops_of(messages, call_ids)[0]
    assert pop.data["call"]["extension"] == "201"
    call = pbx.service.call_of("201")
    assert call.remote_e164 == "+390612345678"
    assert pbx.service.wait_idle()
    wait_until(lambda: pbx.service.delivery_of(call.key, "console").state == "done", "done")
    assert (pbx.data_dir / SQLITE_FILE_NAME).exists()  # the journal is in the test's data dir


def test_click_to_call_is_placed_answered_and_ended_in_the_simulated_pbx(
    live_pbx: Callable[..., LivePbx],
) -> None:
    pbx = live_pbx()
    crm = {"connector": "directory", "record_type": "contact", "record_id": "1"}
    placed = pbx.click_to_call("+39 06 1234 5678", crm)
    assert placed.placed["state"] == "sent"
    (request,) = [e for e in pbx.sim.soap_log if e.command == "CallReq"]
    assert request.fields["call_req_ext_id"] == placed.external_id
    assert placed.ended["state"] == "ended"
    assert pbx.service.journal.get_call(placed.key) is not None


def test_a_plugin_that_does_not_come_up_stops_everything(callbridge_env: CallbridgeEnv) -> None:
    pbx = LivePbx(callbridge_env, plugin="hubspot")  # not configured here
    port = pbx.service.port
    with pytest.raises(RuntimeError, match="hubspot is not active"):
        pbx.start()
    assert not pbx.service.started
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


class _Down(FakeHttpService):
    """A webhook receiver that is down (503 to everything)."""

    def route(self, request: FakeRequest) -> FakeAnswer:
        return FakeAnswer(503, {"error": "down for maintenance"})


def test_a_stop_with_a_delivery_pending_leaves_it_in_the_journal(
    live_pbx: Callable[..., LivePbx],
) -> None:
    with _Down() as hook:
        pbx = live_pbx(
            {
                "CALLBRIDGE_CONNECTORS": "webhook",
                "CALLBRIDGE_WEBHOOK_URLS": f"{hook.url}/hook",
                "CALLBRIDGE_WEBHOOK_SECRET": "webhook-secret-0123456789",
                "CALLBRIDGE_WEBHOOK_POPS": "false",
            },
            plugin="webhook",
        )
        pbx.play("inbound-answered", realtime=False)
        assert pbx.events_accepted()
        pending = pbx.stop_with_delivery_pending("webhook")
        assert not pbx.service.started
        assert pending.state == "pending" and pending.attempts >= 1
        assert hook.count("POST", "/hook") >= 1
