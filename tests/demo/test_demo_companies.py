"""The two-company demo: the companies file it writes, the check that a company's calls land
in its own directory only, and (where callbridge has the companies loader) a whole run."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callbridge.demo.companies import (
    GLOBEX_AGENTS,
    companies_available,
    companies_toml,
    demo_companies,
    demo_scenarios,
)
from callbridge.demo.directory import DemoDirectory
from callbridge.demo.expect import Played, foreign_activities
from callbridge.demo.runner import Demo, DemoOptions
from callbridge.errors import ConfigurationError
from callbridge.plugins.builtin.directory import DirectoryActivity
from callbridge.sim import MemorySink, Simulator
from callbridge.sim.model import two_company_directory
from callbridge.sim.playback import ScenarioPlayer
from callbridge.sim.scenarios import builtin_scenarios, company_scenarios, find_scenario


def test_the_companies_file_gives_each_company_its_own_everything(tmp_path: Path) -> None:
    acme, globex = demo_companies("ingress-acme-0123456789", "api-acme-0123456789")
    data = tomllib.loads(companies_toml((acme, globex), tmp_path))["companies"]
    assert list(data) == ["acme", "globex"]
    assert data["acme"]["ingress_token"] == "ingress-acme-0123456789"
    assert data["acme"]["api_tokens"] == ["api-acme-0123456789:201|202|203|204"]
    assert data["globex"]["company_id"] == "2"
    assert data["globex"]["api_tokens"] == [f"{globex.api_token}:301|302|303"]
    assert data["globex"]["pbx_client"]["user"] == "auth-callbridge@globex"
    assert data["globex"]["pbx_client"]["agents"] == [
        f"{ext}={login}" for ext, login in GLOBEX_AGENTS.items()
    ]
    databases = {c["plugins"]["directory"]["database"] for c in data.values()}
    assert databases == {
        str(tmp_path / "acme-directory.sqlite3"),
        str(tmp_path / "globex-directory.sqlite3"),
    }
    assert globex.ingress_token != acme.ingress_token and globex.api_token != acme.api_token
    if companies_available():  # the loader reads it as the format says
        from callbridge.companies import read_companies_file

        path = tmp_path / "companies.toml"
        path.write_text(companies_toml((acme, globex), tmp_path))
        assert sorted(read_companies_file(path)) == ["acme", "globex"]


def test_the_demo_plays_the_second_companys_scenarios_only_with_two() -> None:
    assert demo_scenarios(1) == builtin_scenarios()
    assert demo_scenarios(2) == builtin_scenarios() + company_scenarios()


def _activity(played: Played, extension: str) -> DirectoryActivity:
    ucid = next(u for u, ext in played.result.owners().items() if ext == extension)
    now = datetime.now(UTC)
    return DirectoryActivity(
        id=7,
        idempotency_key=f"callbridge:2:{ucid}:directory",
        call_key=f"2:{ucid}",
        direction="inbound",
        remote_number="+390698765432",
        local_extension=extension,
        ring_at=now,
        answer_at=now,
        end_at=now,
        duration_s=3,
        outcome="answered",
        hung_up_by="remote",
        contact_id=None,
        contact_name=None,
        owner_extension=None,
        created_at=now,
    )


def test_a_call_logged_in_another_companys_directory_is_a_problem(tmp_path: Path) -> None:
    sim = Simulator(sink=MemorySink(), directory=two_company_directory(), queue_events=False)
    with ScenarioPlayer(sim, realtime=False) as runner:
        scenario = find_scenario("globex-inbound-answered")
        played = Played(scenario, runner.run(scenario))
    acme = DemoDirectory.seeded(tmp_path / "acme.sqlite3")
    assert foreign_activities(played, acme.list_activities(100)) == []
    problems = foreign_activities(played, [_activity(played, "301")])
    assert problems == ["301: activity 7 (inbound answered) landed in another company's directory"]


@pytest.mark.skipif(companies_available(), reason="this callbridge serves several companies")
def test_two_companies_need_the_loader(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"callbridge\.companies"):
        Demo(DemoOptions(data_dir=tmp_path, companies=2)).start()
    assert DemoOptions().companies == 1


@pytest.mark.skipif(not companies_available(), reason="needs the companies loader")
def test_the_two_company_demo_logs_each_call_in_its_own_directory(tmp_path: Path) -> None:
    with Demo(DemoOptions(data_dir=tmp_path, speed=8, companies=2)) as demo:
        checks = demo.run_once(timeout=90)
        assert [c.problems for c in checks if not c.ok] == []
        assert len(checks) == len(builtin_scenarios()) + len(company_scenarios())
        acme = demo.directory_for(1).list_activities(1000)
        globex = demo.directory_for(2).list_activities(1000)
        assert acme and globex
        assert {a.local_extension for a in acme} <= {"201", "202", "203", "204"}
        assert {a.local_extension for a in globex} <= {"301", "302", "303"}
        assert demo.panel_url("301").endswith(demo.api_token_for("301"))
        assert demo.api_token_for("301") != demo.api_token_for("201")
        # The journal kept each company's data apart: an export holds its own only.
        journal = demo.running.services.journal
        assert journal.companies() == ["acme", "globex"]
        for name, extensions, company_id in (
            ("acme", {"201", "202", "203", "204"}, "1"),
            ("globex", {"301", "302", "303"}, "2"),
        ):
            records = [json.loads(line) for line in journal.export_company(name)]
            kinds = {r["record"] for r in records}
            assert {"event", "call", "delivery", "agent_event", "originate"} <= kinds
            calls = [r["data"]["call"] for r in records if r["record"] == "call"]
            assert {c["extension"] for c in calls} <= extensions
            events = [r["data"]["event"] for r in records if r["record"] == "event"]
            assert {e["company_id"] for e in events} == {company_id}
