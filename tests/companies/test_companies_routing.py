"""Plugins per company: one instance each, configured from its table, reached by its calls only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from companies_support import SEEN, RecorderPlugin, one_call, reset, seen

from callbridge.engine import reactions
from callbridge.testing import CallbridgeEnv, CompaniesFile, EventFactory, LiveService, wait_until
from callbridge.voispeed.events import parse_event


@pytest.fixture(autouse=True)
def _fresh_records() -> Iterator[None]:
    reset()
    yield
    reset()


def _two_companies(companies: CompaniesFile) -> None:
    companies.add(
        "acme",
        "1",
        plugins={"recorder": {"label": "acme", "fail_log": True}, "directory": {}},
    )
    companies.add("beta", "2", plugins={"recorder": {"label": "beta"}})
    companies.write()


def test_each_company_gets_its_own_instances_named_after_it(
    callbridge_env: CallbridgeEnv, companies: CompaniesFile
) -> None:
    callbridge_env.set(CALLBRIDGE_RECORDER_LABEL="from-the-environment")
    _two_companies(companies)
    with LiveService(extra_plugins=[RecorderPlugin]) as service:
        states = service.plugin_states()
        plugins = service.running.plugins
    assert states["recorder@acme"] == "active"
    assert states["recorder@beta"] == "active"
    assert states["directory@acme"] == "active"
    assert "directory@beta" not in states  # not listed: not active for beta
    assert states["webhook"] == "disabled"
    acme, beta = plugins.get("recorder@acme"), plugins.get("recorder@beta")
    assert acme.plugin is not beta.plugin  # own clients, own rate limits, own state
    # Each from its own table; the single-company variable reaches neither.
    assert [acme.plugin.label, beta.plugin.label] == ["acme", "beta"]  # type: ignore[union-attr]
    assert (acme.company, beta.company) == ("acme", "beta")
    # Started with its company's view of the service: its name, its own data directory.
    ((_label, _hook, data_dir, company),) = seen("acme", "startup")
    assert company == "acme" and Path(data_dir).parts[-2:] == ("companies", "acme")
    # The directory of a company keeps its file under the company's data directory.
    assert plugins.get("directory@acme").plugin._path.parent.name == "acme"  # type: ignore[union-attr]


def test_a_plugin_listed_but_not_installed_fails_naming_the_company(
    callbridge_env: CallbridgeEnv, companies: CompaniesFile
) -> None:
    companies.add("acme", "1", plugins={"hubspt": {}})
    companies.add("beta", "2", plugins={"recorder": {}})  # label missing
    companies.write()
    with LiveService(extra_plugins=[RecorderPlugin]) as service:
        infos = {info.name: info for info in service.running.plugins.infos}
    assert infos["hubspt@acme"].state == "failed"
    assert "companies.acme.plugins.hubspt: no plugin called 'hubspt'" in str(
        infos["hubspt@acme"].reason
    )
    assert infos["recorder@beta"].state == "failed"
    assert "companies.beta.plugins.recorder.label" in str(infos["recorder@beta"].reason)


def test_events_reach_only_their_companys_instances(
    callbridge_env: CallbridgeEnv, companies: CompaniesFile
) -> None:
    _two_companies(companies)
    acme, beta = companies["acme"], companies["beta"]
    with LiveService(extra_plugins=[RecorderPlugin]) as service:
        acme_id = one_call(service, EventFactory(company_id="1"), acme.ingress_token)
        # The same user call id and number in the other company: another call.
        beta_id = one_call(service, EventFactory(company_id="2"), beta.ingress_token)
        assert acme_id == beta_id
        assert service.wait_idle(60)
        acme_key, beta_key = f"acme.1:{acme_id}", f"beta.2:{beta_id}"
        calls = {c.key: c for c in service.journal.list_calls(10)}
        assert calls[acme_key].company == "acme" and calls[beta_key].company == "beta"
        deliveries = service.journal.list_deliveries(call_keys=[acme_key, beta_key])
        by_plugin = {(d.call_key, d.plugin): d.state for d in deliveries}
        # The record names contacts by plugin, as plugins ask (record.contact_for(self.name)).
        record = next(d.payload for d in deliveries if d.plugin == "recorder@acme")
        assert record["contacts"]["recorder"]["name"] == "acme contact"
        assert record["lookups"] == {"recorder": "found", "directory": "not_found"}
    assert by_plugin == {
        (acme_key, "recorder@acme"): "dead",  # acme's CRM refuses: its own dead letter
        (acme_key, "directory@acme"): "done",
        (beta_key, "recorder@beta"): "done",  # beta's is untouched by it
    }
    for label, key in (("acme", acme_key), ("beta", beta_key)):
        calls_seen = {w for _l, hook, w, _c in seen(label) if hook not in ("pbx_event", "startup")}
        assert calls_seen == {key}, (label, seen(label))
        assert {company for *_rest, company in seen(label)} == {label}
    # One lookup per instance: beta's pop is never answered from acme's cached contact.
    assert len(seen("acme", "lookup_contact")) == 1
    assert len(seen("beta", "lookup_contact")) == 1
    wait_until(lambda: len(seen("beta", "pbx_event")) == 3, "beta's three pbx events")


def test_events_without_a_token_find_their_company_by_id(
    callbridge_env: CallbridgeEnv, companies: CompaniesFile
) -> None:
    """The MySQL source journals events with the monitor tables' company id, no token."""
    _two_companies(companies)
    beta_events, stranger = EventFactory(company_id="2"), EventFactory(company_id="9")
    with LiveService(extra_plugins=[RecorderPlugin]) as service:
        ring = beta_events.incoming()
        for built in (ring, stranger.incoming()):
            assert built.event.company is None
            service.journal.append_event(built.event, raw=built.params, source="mysql")
        service.running.local_engine.wake()
        assert service.wait_idle(60)
        calls = {c.key: c.company for c in service.journal.list_calls(10)}
        # The journal files the event itself under beta too (its export has it), not default.
        exported = [json.loads(line) for line in service.journal.export_company("beta")]
        assert [r["record"] for r in exported if r["record"] == "event"] == ["event"]
        assert service.journal.holds_company("beta")
    assert calls == {f"beta.2:{ring.event.call_id}": "beta"}  # type: ignore[union-attr]
    assert [what for _l, _h, what, _c in seen("beta", "lookup_contact")] == list(calls)
    assert not seen("acme", "pbx_event")  # company 9 is nobody's: journaled, reaches no plugin


def test_an_event_of_a_company_the_engine_has_not_loaded_waits_for_its_reload(
    callbridge_env: CallbridgeEnv, companies: CompaniesFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingress may reload first; a company removed while stopped only waits once."""
    monkeypatch.setattr(reactions, "RELOAD_GRACE", 1.0)
    _two_companies(companies)
    with LiveService(extra_plugins=[RecorderPlugin]) as service:
        engine = service.running.local_engine

        def journal_ring(name: str, company_id: str) -> None:
            ring = EventFactory(company_id=company_id).incoming()
            event = parse_event(ring.params, company=name)  # as the ingress stamps it
            service.journal.append_event(event, raw=ring.params, source="http")
            engine.wake()

        journal_ring("gone", "7")  # removed while stopped: waits a second, then goes on
        assert service.wait_idle(60)
        monkeypatch.setattr(reactions, "RELOAD_GRACE", 60.0)
        journal_ring("newco", "3")  # the ingress reloaded first: waits for the engine's
        companies.add("newco", "3", plugins={"recorder": {"label": "newco"}})
        companies.write()
        engine.reload()  # what SIGHUP does in the engine
        assert service.wait_idle(90)
        calls = {c.company: c.key for c in service.journal.list_calls(10)}
    assert set(calls) == {"gone", "newco"}  # both tracked, none lost
    assert [what for _l, _h, what, _c in seen("newco", "lookup_contact")] == [calls["newco"]]
    assert not [s for s in SEEN if s[3] == "gone"]  # removed: reaches no plugin
