"""``callbridge pbx check``: which dialect answers at the configured URLs and whether the
credentials work, against the simulator's real SOAP and SERI endpoints; never a call."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callbridge.cli import main
from callbridge.settings import PbxSettings
from callbridge.sim.model import DEFAULT_PASSWORD
from callbridge.sim.simulator import Simulator

TOKEN = "seri-module-token"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(settings=PbxSettings(seri_token=TOKEN), queue_events=False) as running:
        yield running


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sim: Simulator) -> dict[str, str]:
    """Settings that reach the simulator on both dialects, nothing else from the environment."""
    for name in list(os.environ):
        if name.startswith("CALLBRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return {
        "CALLBRIDGE_PBX__SOAP_URL": sim.url,
        "CALLBRIDGE_PBX__USER": "auth-mario@acme",
        "CALLBRIDGE_PBX__PASSWORD": DEFAULT_PASSWORD,
        "CALLBRIDGE_PBX__SERI_URL": sim.seri_url,
        "CALLBRIDGE_PBX__SERI_TOKEN": TOKEN,
        "CALLBRIDGE_PBX__DIALECT": "seri",
    }


def _check(env: dict[str, str], *args: str, **changes: str) -> Result:
    return CliRunner().invoke(main, ["pbx", "check", *args], env={**env, **changes})


def _probes(result: Result) -> dict[str, dict[str, object]]:
    return {p["dialect"]: p for p in json.loads(result.output)["probes"]}


def test_both_dialects_answer_and_the_credentials_work(env: dict[str, str], sim: Simulator) -> None:
    result = _check(env, "--json")
    assert result.exit_code == 0, result.output
    probes = _probes(result)
    assert probes["seri"]["answers"] and probes["seri"]["credentials"] == "accepted"
    assert probes["soap"]["answers"] and probes["soap"]["credentials"] == "accepted"
    # Nothing was placed: one read-only service, one CallHold of a call that does not exist.
    assert [e.service for e in sim.seri.log] == ["get_user_call_report"]
    assert [e.command for e in sim.soap_log] == ["CallHold"]
    assert TOKEN not in result.output


def test_a_wrong_token_or_password_is_refused(env: dict[str, str]) -> None:
    result = _check(env, "--json", CALLBRIDGE_PBX__SERI_TOKEN="wrong", CALLBRIDGE_PBX__PASSWORD="x")
    assert result.exit_code == 1, result.output
    probes = _probes(result)
    assert probes["seri"]["answers"] and probes["seri"]["credentials"] == "refused"
    assert probes["soap"]["answers"] and probes["soap"]["credentials"] == "refused"


def test_the_wrong_dialect_configured_is_named(env: dict[str, str], sim: Simulator) -> None:
    # The SERI URL points at the SOAP endpoint: no module answers there; SOAP works.
    result = _check(env, CALLBRIDGE_PBX__SERI_URL=sim.url)
    assert result.exit_code == 1, result.output
    assert "seri" in result.output and "does not answer" in result.output
    assert "set CALLBRIDGE_PBX__DIALECT=soap" in result.output
    soap = _check(env, CALLBRIDGE_PBX__SERI_URL=sim.url, CALLBRIDGE_PBX__DIALECT="soap")
    assert soap.exit_code == 0, soap.output


def test_nothing_listens(env: dict[str, str]) -> None:
    result = _check(
        env, "--json", CALLBRIDGE_PBX__SERI_URL="http://127.0.0.1:9/PBX/seri_endpoint.php"
    )
    assert result.exit_code == 1
    assert "not reachable" in str(_probes(result)["seri"]["detail"])
