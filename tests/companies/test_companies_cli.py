"""``callbridge plugins|calls|deliveries`` and ``/metrics`` show and filter by company."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner
from companies_support import RecorderPlugin, one_call, reset

from callbridge.testing import CallbridgeEnv, CompaniesFile, EventFactory, LiveService, cli_main


@pytest.fixture(autouse=True)
def _fresh_records() -> Iterator[None]:
    reset()
    yield
    reset()


def _cli(*args: str) -> object:
    result = CliRunner().invoke(cli_main, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_cli_and_metrics_filter_by_company(
    callbridge_env: CallbridgeEnv, companies: CompaniesFile
) -> None:
    acme = companies.add("acme", "1", plugins={"recorder": {"label": "acme"}, "directory": {}})
    beta = companies.add("beta", "2", plugins={"recorder": {"label": "beta", "fail_log": True}})
    companies.write()
    with LiveService(extra_plugins=[RecorderPlugin]) as service:
        acme_id = one_call(service, EventFactory(company_id="1"), acme.ingress_token)
        beta_id = one_call(service, EventFactory(company_id="2"), beta.ingress_token)
        assert service.wait_idle(60)
        scraped = httpx.get(f"{service.url}/metrics", params={"company": "beta"}, trust_env=False)
        everything = httpx.get(f"{service.url}/metrics", trust_env=False).text
    text = scraped.text
    assert 'callbridge_company_events_total{company="beta",result="accepted"} 3.0' in text
    assert 'callbridge_company_deliveries{company="beta",state="dead"} 1.0' in text
    assert 'callbridge_delivery_attempts_total{plugin="recorder@beta",result="dead"}' in text
    assert "acme" not in text
    assert 'callbridge_company_pops_total{company="acme"}' in everything

    calls = _cli("calls", "--company", "acme", "--json")
    assert [(c["key"], c["company"]) for c in calls] == [(f"acme.1:{acme_id}", "acme")]  # type: ignore[union-attr]
    dead = _cli("deliveries", "list", "--company", "beta", "--json")
    assert [(d["call_key"], d["plugin"], d["state"]) for d in dead] == [  # type: ignore[union-attr]
        (f"beta.2:{beta_id}", "recorder@beta", "dead")
    ]
    assert _cli("deliveries", "list", "--company", "nobody", "--json") == []
    plugins = _cli("plugins", "--company", "acme", "--json")
    assert {p["name"] for p in plugins} == {"recorder@acme", "directory@acme"}  # type: ignore[union-attr]
    refused = CliRunner().invoke(cli_main, ["plugins", "--company", "nobody"])
    assert refused.exit_code == 2 and "known: acme, beta" in refused.output
