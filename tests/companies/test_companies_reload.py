"""SIGHUP to a real ``callbridge serve``: companies added, changed and removed, no event lost."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from companies_support import ServeProcess

from callbridge.journal.base import DeliveryState
from callbridge.journal.factory import open_journal
from callbridge.testing import (
    CallbridgeEnv,
    CompaniesFile,
    EventFactory,
    SseReader,
    wait_until,
)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(events: EventFactory) -> list[dict[str, str]]:
    ring = events.incoming()
    call_id = str(ring.event.call_id)  # type: ignore[union-attr]
    return [ring.params, events.answered(call_id).params, events.remote_hangup(call_id).params]


def _done(env: CallbridgeEnv, plugin: str) -> int:
    """Deliveries of ``plugin`` done so far (read from the service's journal)."""
    journal = open_journal(env.settings())
    try:
        found = journal.list_deliveries(state=DeliveryState.DONE, limit=10_000)
    finally:
        journal.close()
    return sum(1 for d in found if d.plugin == plugin)


@pytest.mark.parametrize("engine", ["process", "thread"])
def test_sighup_adds_changes_and_removes_companies_without_dropping_events(
    callbridge_env: CallbridgeEnv, companies: CompaniesFile, tmp_path: Path, engine: str
) -> None:
    callbridge_env.set(CALLBRIDGE_TRACKER__GROUP_WINDOW="0", CALLBRIDGE_SERVER__ENGINE=engine)
    acme = companies.add("acme", "1", plugins=["directory"])
    companies.write()
    serve = ServeProcess(tmp_path / "serve", _free_port()).start()
    acme_events, beta_events = EventFactory(company_id="1"), EventFactory(company_id="2")
    statuses: list[int] = []
    sent_calls = [0]
    stop = threading.Event()

    def acme_keeps_calling() -> None:  # acme's PBX, all along the reloads
        while not stop.is_set():
            for params in _call(acme_events):
                statuses.append(serve.get({**params, "token": acme.ingress_token}))
            sent_calls[0] += 1

    caller = threading.Thread(target=acme_keeps_calling, daemon=True)
    try:
        caller.start()
        wait_until(lambda: sent_calls[0] >= 3, "acme's first calls")
        beta = companies.add("beta", "2", plugins=["directory"])
        beta_call = _call(beta_events)
        assert serve.get({**beta_call[0], "token": beta.ingress_token}) == 403  # not yet
        companies.write()
        serve.hup()  # added: beta's token is taken once the service has reloaded
        wait_until(
            lambda: serve.get({**beta_call[0], "token": beta.ingress_token}) == 200,
            "beta's events taken after the reload",
            60,
        )
        # Beta's API token streams beta's agent 201 (through the engine child's bell).
        with SseReader(serve.url, "201", beta.api_token) as beta_201:
            for params in beta_call[1:]:
                assert serve.get({**params, "token": beta.ingress_token}) == 200
            beta_201.wait_for(lambda m: any(x.event == "pop" for x in m), "beta's pop", 60)
        # The engine child reloaded too: beta's own directory instance logs beta's call.
        wait_until(lambda: _done(callbridge_env, "directory@beta") == 1, "beta's activity", 60)
        stop.set()
        caller.join(60)
        assert statuses and set(statuses) == {200}, sorted(set(statuses))
        wait_until(  # every acme call sent across the reload is logged, once
            lambda: _done(callbridge_env, "directory@acme") == sent_calls[0],
            f"acme's {sent_calls[0]} activities",
            90,
        )

        # Changed (beta's token) and removed (acme) in one reload.
        old_token = beta.ingress_token
        beta.table["ingress_token"] = beta.ingress_token = "beta-new-ingress-token-0123"
        companies.remove("acme")
        companies.write()
        serve.hup()
        ring = acme_events.incoming().params
        wait_until(
            lambda: serve.get({**ring, "token": acme.ingress_token}) == 403,
            "acme's token refused after its removal",
            60,
        )
        assert serve.get({**beta_events.incoming().params, "token": old_token}) == 403
        assert serve.get({**beta_events.incoming().params, "token": beta.ingress_token}) == 200

        # An invalid file changes nothing, and says why.
        companies.path.write_text("[companies.beta]\ncompany_id = 2\nbogus = 1\n")
        serve.hup()
        wait_until(lambda: "reload refused" in serve.output(), "the refusal in the log", 60)
        assert "companies.beta.bogus" in serve.output()
        assert serve.get({**beta_events.incoming().params, "token": beta.ingress_token}) == 200
    finally:
        stop.set()
        serve.stop()
    assert "Traceback" not in serve.output()
