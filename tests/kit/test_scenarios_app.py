"""Scenarios through the real engine, the plugin manager fixture, and the app client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import APIRouter
from kit_crm import TOKEN, KitCrm, KitCrmPlugin

from callbridge.hookspecs import hookimpl
from callbridge.models import CallState, CrmContext, Direction, Outcome
from callbridge.plugins.manager import Plugins
from callbridge.testing import AppHarness, CallbridgeEnv, EventFactory, ScenarioRunner


@pytest.fixture
def crm(callbridge_env: CallbridgeEnv) -> Iterator[KitCrm]:
    server = KitCrm()
    server.start()
    callbridge_env.set(CALLBRIDGE_KITCRM_URL=server.url, CALLBRIDGE_KITCRM_TOKEN=TOKEN)
    yield server
    server.stop()


def test_plugin_manager_holds_only_what_was_asked(
    crm: KitCrm, plugin_manager: Callable[..., Plugins]
) -> None:
    plugins = plugin_manager(KitCrmPlugin())
    assert [i.name for i in plugins.infos] == ["kitcrm"]
    assert plugins.get("kitcrm").active
    with_dir = plugin_manager(KitCrmPlugin(), builtins=("directory",))
    assert [i.name for i in with_dir.infos] == ["directory", "kitcrm"]
    with pytest.raises(ValueError, match="no built-in"):
        plugin_manager(KitCrmPlugin(), builtins=("nope",))


def test_inbound_answered(crm: KitCrm, scenarios: Callable[..., ScenarioRunner]) -> None:
    result = scenarios(KitCrmPlugin()).inbound_answered(ring_s=6, talk_s=95)
    assert [p.state for p in result.pops] == [
        CallState.RINGING,
        CallState.ANSWERED,
        CallState.ENDED,
    ]
    assert result.pops[0].contacts["kitcrm"].name == "Mario Rossi"
    (record,) = result.records
    assert record.call.outcome is Outcome.ANSWERED
    assert record.call.direction is Direction.INBOUND
    assert (record.duration_s, record.ring_s) == (95, 6)
    (ref,) = result.results
    assert ref is not None and ref.connector == "kitcrm"
    assert list(crm.activities) == [record.idempotency_key("kitcrm")]


def test_missed(crm: KitCrm, scenarios: Callable[..., ScenarioRunner]) -> None:
    result = scenarios(KitCrmPlugin()).missed(remote="0298765432")
    assert result.call.outcome is Outcome.MISSED
    assert result.pops[0].contacts == {}  # unknown number
    assert [d.state.value for d in result.deliveries] == ["done"]


def test_group_answered_logs_the_answerer_only(
    crm: KitCrm, scenarios: Callable[..., ScenarioRunner]
) -> None:
    result = scenarios(KitCrmPlugin()).group(members=("201", "202", "203"), answered_by="202")
    assert len(result.calls) == 3
    (record,) = result.records
    assert record.call.extension == "202" and record.call.outcome is Outcome.ANSWERED
    assert len(crm.activities) == 1


def test_group_missed_logs_one_missed_call(
    crm: KitCrm, scenarios: Callable[..., ScenarioRunner]
) -> None:
    result = scenarios(KitCrmPlugin()).group(answered_by=None)
    (record,) = result.records
    assert record.call.outcome is Outcome.MISSED
    assert record.call.group == "600"


def test_click_to_call_lands_on_the_clicked_record(
    crm: KitCrm, scenarios: Callable[..., ScenarioRunner]
) -> None:
    where = CrmContext(connector="kitcrm", record_type="Contact", record_id="C-9")
    runner = scenarios(KitCrmPlugin())
    result = runner.click_to_call(crm=where)
    record = result.records[0]
    assert record.call.direction is Direction.OUTBOUND
    assert record.call.crm_context == where
    assert record.call.outcome is Outcome.ANSWERED
    unanswered = runner.click_to_call(answered=False)
    assert unanswered.records[0].call.outcome is not Outcome.ANSWERED
    assert len(crm.activities) == 2


def test_failing_crm_leaves_a_pending_delivery(
    crm: KitCrm, scenarios: Callable[..., ScenarioRunner]
) -> None:
    crm.status = 400
    result = scenarios(KitCrmPlugin()).missed()
    assert [d.state.value for d in result.deliveries] == ["dead"]
    assert "400" in (result.deliveries[0].last_error or "")


class Routes:
    name = "routes"

    @hookimpl
    def register_routes(self, router: APIRouter) -> None:
        @router.get("/hello")
        def hello() -> dict[str, Any]:
            return {"hello": "world"}


def test_app_client_serves_plugin_routes_and_takes_events(
    crm: KitCrm, app_client: Callable[..., AppHarness], events: EventFactory
) -> None:
    app = app_client(KitCrmPlugin(), Routes())
    assert app.client.get("/plugins/routes/hello").json() == {"hello": "world"}
    assert app.client.get("/healthz").status_code == 200
    call = events.call_id()
    for built in (events.incoming(call), events.remote_hangup(call)):
        response = app.send_event(built)
        assert response.status_code == 200, response.text
    bad = app.client.get("/pbx/events", params=events.incoming().params)
    assert bad.status_code in (401, 403)  # no token
    assert app.wait_idle(30)
    assert len(crm.activities) == 1
    assert app.api_token not in repr(app) and app.ingress_token not in repr(app)
    assert app.client.get("/v1/calls/cb-unknown").status_code == 401
    assert app.client.get("/v1/calls/cb-unknown", headers=app.headers).status_code == 404
