"""One variable switches a running callbridge service between the PBX's dialects: with
``CALLBRIDGE_PBX__DIALECT=seri`` the real service (``callbridge.testing.LiveService``, the
assembly ``callbridge serve`` uses) places calls with ``call_request`` and reads the module's
events; the same settings with ``soap`` place them with SOAP CallReq."""

from __future__ import annotations

import pytest

from callbridge.settings import PbxSettings
from callbridge.sim import Simulator
from callbridge.sim.emitter import HttpSink
from callbridge.sim.model import DEFAULT_PASSWORD
from callbridge.testing import CallbridgeEnv, LiveService, RecordingCrm, wait_until

TOKEN = "dialect-switch-ingress-token-0123456789"
API = "dialect-switch-api-token-0123456789"
MODULE = "dialect-switch-module-token"


@pytest.mark.parametrize("dialect", ["seri", "soap"])
def test_one_variable_switches_the_dialect(callbridge_env: CallbridgeEnv, dialect: str) -> None:
    # The sink's URL is set once the service has its port (the service needs the sim's).
    sink = HttpSink("http://127.0.0.1:9/", TOKEN)
    sim = Simulator(sink=sink, settings=PbxSettings(seri_token=MODULE), dialect=dialect)  # type: ignore[arg-type]
    sim.start()
    recorder = RecordingCrm()
    callbridge_env.set(
        CALLBRIDGE_INGRESS_TOKEN=TOKEN,
        CALLBRIDGE_SERVER__API_TOKENS=f"{API}:*",
        CALLBRIDGE_PBX__DIALECT=dialect,
        CALLBRIDGE_PBX__SOAP_URL=sim.url,
        CALLBRIDGE_PBX__USER="auth-callbridge@acme",
        CALLBRIDGE_PBX__PASSWORD=DEFAULT_PASSWORD,
        CALLBRIDGE_PBX__SERI_URL=sim.seri_url,
        CALLBRIDGE_PBX__SERI_TOKEN=MODULE,
        CALLBRIDGE_PBX__AGENTS="201=auth-mario@acme",
    )
    live = LiveService(extra_plugins=[recorder]).start()
    try:
        sink.url = f"{live.url}/pbx/{'seri' if dialect == 'seri' else 'events'}"
        with live.api(API) as api:
            response = api.post("/v1/calls", json={"agent": "201", "number": "0612345678"})
        assert response.status_code == 202, response.text
        external_id = response.json()["external_id"]
        assert response.json()["state"] == "sent"
        soap = [e for e in sim.soap_log if e.command == "CallReq"]
        seri = [e for e in sim.seri.log if e.service == "call_request"]
        assert (len(seri), len(soap)) == ((1, 0) if dialect == "seri" else (0, 1))

        call = sim.find_call(external_id)
        assert call is not None
        sim.answer(call)
        sim.hangup(call, by="remote")
        wait_until(lambda: len(recorder.records) == 1, "the activity", timeout=60)
        record = recorder.records[0]
        assert record.call.external_id == external_id
        assert (record.call.extension, record.call.outcome) == ("201", "answered")
        originate = live.journal.get_originate(external_id)
        assert originate is not None and originate.state == "ended"
        assert originate.request_id == (seri[0].request_id if seri else None)
    finally:
        live.stop()
        sim.stop()
