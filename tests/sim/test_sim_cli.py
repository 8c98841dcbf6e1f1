"""``callbridge sim`` as a user runs it: real processes talking to a real receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sim_receiver import Receiver

from callbridge.cli import main
from callbridge.settings import PbxSettings
from callbridge.testing import wait_until
from callbridge.voispeed.soap import SoapClient

CALLBRIDGE = str(Path(sys.executable).with_name("callbridge"))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_scenarios_lists_the_builtins() -> None:
    result = CliRunner().invoke(main, ["sim", "scenarios"])
    assert result.exit_code == 0
    assert "click-to-call-answered" in result.output
    assert "group-answered" in result.output


def test_play_needs_a_scenario() -> None:
    result = CliRunner().invoke(main, ["sim", "play"])
    assert result.exit_code == 2
    assert "--all" in result.output


def test_play_sends_events_to_the_callback(receiver: Receiver, tmp_path: Path) -> None:
    run = subprocess.run(
        [
            CALLBRIDGE,
            "sim",
            "play",
            "inbound-answered",
            "click-to-call-answered",
            "--fast",
            "--callback",
            receiver.events_url,
            "--token",
            "tk",
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "201: ssn_event 17 18 21" in run.stdout
    assert "delivered 6 of 6 events" in run.stdout
    assert [r["ssn_event"] for r in receiver.queries] == ["16", "18", "20", "17", "18", "21"]
    assert all(r["token"] == "tk" for r in receiver.queries)
    ext_ids = {r["ext_id"] for r in receiver.queries[3:]}
    assert len(ext_ids) == 1
    assert ext_ids.pop().startswith("cb-")


GROUP_LATIN1 = """
name = "group-latin1"
description = "A caller with an accented name dials group 600; 202 answers."

[[step]]
action = "incoming"
call = "c1"
from = "0612345678"
to = "600"
caller_name = "Nicolò|Rossi"

[[step]]
action = "answer"
call = "c1"
extension = "202"

[events]
"201" = [16, 19]
"202" = [16, 18]
"""


def test_play_in_the_shapes_of_a_real_site(receiver: Receiver, tmp_path: Path) -> None:
    """--ext dialled, --group-end 19, --text latin1-raw: what a trigger pasting names sends."""
    scenario = tmp_path / "group-latin1.toml"
    scenario.write_text(GROUP_LATIN1, encoding="utf-8")
    run = subprocess.run(
        [
            CALLBRIDGE,
            "sim",
            "play",
            str(scenario),
            "--fast",
            "--callback",
            receiver.events_url,
            "--token",
            "tk",
            "--ext",
            "dialled",
            "--group-end",
            "19",
            "--text",
            "latin1-raw",
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    codes = [(r["ssn_event"], r["ext"]) for r in receiver.queries]
    assert codes == [("16", "600"), ("16", "600"), ("19", "0612345678"), ("18", "0612345678")]
    # http.server reads the request line as latin-1: the raw byte F2 is "ò".
    assert receiver.queries[0]["identity"] == "Nicolò|Rossi||0|0"


def test_play_fails_on_a_broken_scenario_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "bad"\n[[step]]\naction = "incoming"\ncall = "c"\nfrom = "1"\nto = "7"\n'
    )
    run = subprocess.run(
        [CALLBRIDGE, "sim", "play", str(bad), "--fast"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1
    assert "unknown extension 7" in run.stderr


def test_serve_answers_click_to_call_in_real_time(receiver: Receiver, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            CALLBRIDGE,
            "sim",
            "serve",
            "--port",
            "0",
            "--callback",
            receiver.events_url,
            "--answer-after",
            "0.2",
            "--hangup-after",
            "0.2",
        ],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("simulated PBX: SOAP endpoint http://127.0.0.1:"), first
        url = first.split()[-1]
        wait_until(
            lambda: sum(r["ssn_event"] == "1" for r in receiver.queries) == 8,
            "eight device logins",
        )
        settings = PbxSettings(
            soap_url=url, user="auth-callbridge@acme", password=SecretStr("callbridge")
        )
        with SoapClient(settings) as client:
            sent = client.call_req("auth-giulia@acme", "+39 02 8765 4321")
        wait_until(
            lambda: [r["ssn_event"] for r in receiver.queries[8:]] == ["17", "18", "20"],
            "the call's 17, 18, 20",
        )
        assert {r["ext_id"] for r in receiver.queries[8:]} == {sent.external_id}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail("sim serve did not stop on Ctrl-C")
    assert process.returncode == 0
