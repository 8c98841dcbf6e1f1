"""Every built-in scenario end to end: simulator -> HTTP ingress -> journal -> tracker ->
plugins, with the pops read from the agent streams over real HTTP and the activities read
from the ``directory`` plugin's database; on both dialects of the PBX (SOAP and SERI)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from callbridge.demo import Demo, DemoOptions
from callbridge.sim.scenarios import Scenario, builtin_scenarios
from callbridge.testing import SseMessage, SseReader, pops_of

SCENARIOS = builtin_scenarios()


@pytest.fixture(scope="module", params=["soap", "seri"])
def demo(request: pytest.FixtureRequest) -> Iterator[Demo]:
    """Every scenario on each of the PBX's dialects: the document's and the module's."""
    with Demo(DemoOptions(speed=8.0, dialect=request.param)) as running:
        yield running


_STATE = {16: "ringing", 17: "ringing", 18: "answered", 19: "ended", 20: "ended", 21: "ended"}


def _expected_states(scenario: Scenario) -> dict[str, Counter[str]]:
    """The pop states each extension should see, from the scenario's ``[events]``."""
    return {ext: Counter(_STATE[code] for code in codes) for ext, codes in scenario.events.items()}


def _check_contact(demo: Demo, pop: SseMessage) -> None:
    """The pop carries what the directory knows about the remote number, and nothing else."""
    call = pop.data["call"]
    number = call.get("remote_e164") or call["remote_number"]
    found = demo.directory.find(number) if call["direction"] != "internal" else []
    contact = pop.data["contacts"].get("directory")
    if not found:
        assert contact is None, pop
    elif len(found) == 1:
        assert contact is not None, pop
        assert contact["name"] == found[0].name
        assert contact["record_id"] == str(found[0].id)
        assert not contact["candidates"]
    else:
        assert contact is not None, pop
        assert sorted(c["name"] for c in contact["candidates"]) == sorted(f.name for f in found)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_end_to_end(demo: Demo, scenario: Scenario) -> None:
    extensions = sorted(set(scenario.events) | {e.extension for e in scenario.expect})
    readers = {ext: SseReader(demo.url, ext, demo.api_token).start() for ext in extensions}
    try:
        played = demo.play(scenario)
        assert demo.wait_for_activities([played], timeout=60), "activities not written in time"
        checked = demo.check(played)
        assert checked.ok, checked.problems

        owners = played.result.owners()
        expected = _expected_states(scenario)
        for ext, reader in readers.items():
            mine = {ucid for ucid, owner in owners.items() if owner == ext}
            want = expected.get(ext, Counter())
            pops = reader.wait_for(
                lambda messages, mine=mine, want=want: (
                    Counter(m.data["state"] for m in pops_of(messages, mine)) == want
                ),
                f"the pops of {ext}: {dict(want)}",
                timeout=30,
            )
            by_call: dict[str, list[str]] = {}
            for pop in pops_of(pops, mine):
                by_call.setdefault(pop.data["call"]["user_call_id"], []).append(pop.data["state"])
                assert pop.data["call"]["extension"] == ext
                _check_contact(demo, pop)
            for states in by_call.values():  # each call: rings, maybe answered, ends; in order
                assert states[0] == "ringing" and states[-1] == "ended", states
                assert states == sorted(states, key=["ringing", "answered", "ended"].index)
    finally:
        for reader in readers.values():
            reader.close()

    if any(step.action == "soap_call_req" for step in scenario.steps):
        # The demo placed it through POST /v1/calls from the contact owning the number:
        # the activity is on that record, whatever a number lookup would say.
        assert played.clicked, "the click-to-call went through the API with a CRM record"
        label, contact_id = next(iter(played.clicked.items()))
        external_id = played.result.external_ids[label]
        if demo.options.dialect == "seri":  # call_request with our id as extid, once
            sent = [e for e in demo.sim.seri.log if e.params.get("extid") == external_id]
            assert [e.service for e in sent] == ["call_request"], sent
            originate = demo.running.services.journal.get_originate(external_id)
            assert originate is not None and originate.request_id == sent[0].request_id
        else:
            requests = [e for e in demo.sim.soap_log if e.command == "CallReq"]
            assert any(e.fields.get("call_req_ext_id") == external_id for e in requests)
        activities = [
            a
            for a in demo.directory.list_activities(1000)
            if a.call_key.rpartition(":")[2] in owners
        ]
        assert [a.contact_id for a in activities] == [contact_id]
