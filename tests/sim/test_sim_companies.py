"""The simulator's second company (Globex, company id 2): its own users, groups and numbers,
its scenarios, its own ingress token, and a SOAP account that cannot act for ACME."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sim_receiver import Receiver

from callbridge.cli import main
from callbridge.sim import MemorySink, Simulator
from callbridge.sim.emitter import HttpSink
from callbridge.sim.model import (
    company_ids,
    default_directory,
    second_company_directory,
    two_company_directory,
)
from callbridge.sim.playback import play
from callbridge.sim.scenarios import company_scenarios
from callbridge.voispeed.soap import SoapClient, SoapFault

CALLBRIDGE = str(Path(sys.executable).with_name("callbridge"))


@pytest.fixture
def two(sink: MemorySink) -> Iterator[Simulator]:
    with Simulator(sink=sink, directory=two_company_directory(), queue_events=False) as sim:
        yield sim


def test_the_second_company_has_its_own_people_and_numbers() -> None:
    acme, globex = default_directory(), second_company_directory()
    assert company_ids(globex) == [2]
    assert {u.extension for u in acme.users}.isdisjoint(u.extension for u in globex.users)
    assert all(u.login.endswith("@globex") for u in globex.users)
    both = two_company_directory()
    assert company_ids(both) == [1, 2]
    assert both.group_by_number("700") is not None and both.dids["0698760700"] == "700"


@pytest.mark.parametrize("scenario", company_scenarios(), ids=lambda s: s.name)
def test_each_second_company_scenario_runs_in_company_2(
    scenario: object, two: Simulator, sink: MemorySink
) -> None:
    result = play(two, scenario, realtime=False)  # type: ignore[arg-type]
    assert result.check_events(sink.events) == []
    assert {e["company_id"] for e in sink.events} == {"2"}


def test_a_companys_soap_account_cannot_act_for_another_companys_user(two: Simulator) -> None:
    globex = two.pbx_settings("auth-callbridge@globex")
    with SoapClient(globex, sleep=lambda _s: None) as soap:
        with pytest.raises(SoapFault, match="unknown user"):
            soap.call_req("auth-mario@acme", "+390612345678", external_id="cb-x1")
        soap.call_req("auth-hank@globex", "+390612345678", external_id="cb-x2")
    assert two.find_call("cb-x1") is None
    assert two.find_call("cb-x2") is not None


def test_each_companys_events_carry_its_own_token(receiver: Receiver) -> None:
    sink = HttpSink(receiver.url, "acme-token", company_tokens={"2": "globex-token"})
    with Simulator(sink=sink, directory=two_company_directory(), queue_events=False) as sim:
        sim.incoming_call("+390611111111", "201")
        sim.incoming_call("+390622222222", "301")
    sink.close()
    seen = {(r["company_id"], r["token"]) for r in receiver.queries}
    assert seen == {("1", "acme-token"), ("2", "globex-token")}
    assert "globex-token" not in repr(sink)


def test_sim_play_all_with_two_companies_from_the_command_line(
    receiver: Receiver, tmp_path: Path
) -> None:
    run = subprocess.run(
        [
            CALLBRIDGE,
            "sim",
            "play",
            "--all",
            "--fast",
            "--companies",
            "2",
            "--callback",
            receiver.url,
            "--token",
            "acme-token",
            "--company-token",
            "2=globex-token",
        ],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "> globex-click-to-call" in run.stdout
    tokens = {r["company_id"]: r["token"] for r in receiver.queries}
    assert tokens == {"1": "acme-token", "2": "globex-token"}


def test_a_second_company_scenario_needs_two_companies() -> None:
    result = CliRunner().invoke(main, ["sim", "play", "globex-inbound-answered", "--fast"])
    assert result.exit_code == 1
    assert "--companies 2" in result.output
    listed = CliRunner().invoke(main, ["sim", "scenarios"])
    assert "globex-inbound-answered" in listed.output and "(company 2)" in listed.output
