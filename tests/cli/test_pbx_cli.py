"""``callbridge pbx``: dry runs of all 13 commands, real sends to a local server, exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from defusedxml.ElementTree import fromstring

from callbridge.cli import main
from callbridge.testing import FakeAnswer, FakeHttpService, FakeRequest

PASSWORD = "pbx-pass"
PASSWORD_HASH = hashlib.md5(PASSWORD.encode()).hexdigest()
SOAP = "http://www.w3.org/2001/12/soap-envelope"
ROOT = Path(__file__).resolve().parents[2]

#: Arguments of each subcommand, and the SOAP command it sends.
COMMANDS: list[tuple[str, list[str]]] = [
    ("CallReq", ["call-req", "--user", "auth-mario@acme", "--number", "0612345678",
                 "--device", "000012A0", "--external-id", "cb-cli-1"]),
    ("CallReqExt", ["call-req-ext", "--user", "auth-mario@acme", "--calling-id", "0x10",
                    "--called-id", "dec:32", "--calling-type", "user", "--called-type", "gateway",
                    "--calling-number", "201", "--called-number", "0612345678", "--record"]),
    ("CallAccept", ["call-accept", "--user", "auth-mario@acme", "--call-id", "000012A1"]),
    ("CallHold", ["call-hold", "--user", "auth-mario@acme", "--call-id", "000012A1"]),
    ("CallRetrieve", ["call-retrieve", "--user", "auth-mario@acme", "--call-id", "12a1"]),
    ("CallDivert", ["call-divert", "--user", "auth-mario@acme", "--call-id", "000012A1",
                    "--recipient", "202"]),
    ("CallTransfer", ["call-transfer", "--user", "auth-mario@acme", "--from-call", "000012A1",
                      "--to-call", "000012A2"]),
    ("CallDisconnect", ["call-disconnect", "--user", "auth-mario@acme", "--call-id", "1"]),
    ("CallDeviceSwitch", ["call-device-switch", "--user", "auth-mario@acme", "--call-id", "1",
                          "--device", "000012B0"]),
    ("CallPick", ["call-pick", "--user", "auth-mario@acme", "--number", "203",
                  "--device", "000012A0"]),
    ("CallRecStart", ["call-rec-start", "--user", "auth-mario@acme", "--call-id", "1"]),
    ("CallRecStop", ["call-rec-stop", "--user", "auth-mario@acme", "--call-id", "1"]),
    ("CRUDevent", ["crud-event", "--action", "update", "--entity-type", "gateway",
                   "--entity-subtype", "isdn", "--entity-id", "4"]),
]  # fmt: skip


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A clean CALLBRIDGE_* environment with PBX credentials, in an empty directory."""
    for name in list(os.environ):
        if name.startswith("CALLBRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env
    values = {
        "CALLBRIDGE_PBX__USER": "auth-integration@acme",
        "CALLBRIDGE_PBX__PASSWORD": PASSWORD,
        "CALLBRIDGE_PBX__SOAP_URL": "http://127.0.0.1:9/soap",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize(("command", "args"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_dry_run_of_every_command(env: dict[str, str], command: str, args: list[str]) -> None:
    result = run("pbx", *args, "--dry-run")
    assert result.exit_code == 0, result.output
    root = fromstring(result.stdout.encode())
    body = root.find(f"{{{SOAP}}}Body")
    assert body is not None
    assert body[0].tag == f"{{urn:vspbx}}{command}"
    assert root.findtext(f"{{{SOAP}}}Header/password") == "********"
    assert PASSWORD_HASH not in result.output
    assert f"SOAPAction: urn:vspbx#{command}" in result.stderr


def test_dry_run_values(env: dict[str, str]) -> None:
    result = run("pbx", *COMMANDS[0][1], "--dry-run")
    assert "<call_req_ext_id>cb-cli-1</call_req_ext_id>" in result.stdout
    crud = run("pbx", *COMMANDS[-1][1], "--dry-run").stdout
    assert "<crud_event_entity_subtype>2</crud_event_entity_subtype>" in crud
    numeric = run("pbx", "crud-event", "--action", "3", "--entity-type", "4",
                  "--entity-subtype", "2", "--entity-id", "4", "--dry-run")  # fmt: skip
    assert numeric.stdout == crud


def test_show_secrets(env: dict[str, str]) -> None:
    result = run("pbx", "call-hold", "--user", "u@acme", "--call-id", "1", "--dry-run",
                 "--show-secrets")  # fmt: skip
    assert f"<password>{PASSWORD_HASH}</password>" in result.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["call-req", "--user", "u", "--number", "abc"], "--number"),
        (["call-req", "--user", "u", "--number", "1", "--device", "nope"], "--device"),
        (["call-req", "--user", "u", "--number", "1", "--external-id", "a b"], "--external-id"),
        (["call-hold", "--user", "u", "--call-id", "123456789"], "--call-id"),
        (["call-transfer", "--user", "u", "--from-call", "1", "--to-call", "x"], "--to-call"),
        (["crud-event", "--action", "create", "--entity-type", "gateway", "--entity-id", "1"],
         "--entity-subtype"),
        (["crud-event", "--action", "explode", "--entity-type", "user", "--entity-id", "1"],
         "--action"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_naming_the_option(
    env: dict[str, str], args: list[str], option: str
) -> None:
    result = run("pbx", *args, "--dry-run")
    assert result.exit_code == 2
    assert option in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "option", "readings"),
    [
        (["call-hold", "--user", "u", "--call-id", "4768"], "--call-id", ["00004768", "000012A0"]),
        (["call-req", "--user", "u", "--number", "201", "--device", "4768"], "--device",
         ["00004768", "000012A0"]),
        (["call-transfer", "--user", "u", "--from-call", "000012A1", "--to-call", "202"],
         "--to-call", ["00000202", "000000CA", "CallDivert"]),
    ],
)  # fmt: skip
def test_ambiguous_ids_are_refused_with_both_readings(
    env: dict[str, str], args: list[str], option: str, readings: list[str]
) -> None:
    """``4768`` copied from a monitor table is not silently sent as ``00004768``."""
    result = run("pbx", *args, "--dry-run")
    assert result.exit_code == 2, result.output
    assert option in result.stderr
    for reading in readings:
        assert reading in result.stderr


@pytest.mark.parametrize(
    ("typed", "sent"),
    [("dec:4768", "000012A0"), ("0x4768", "00004768"), ("hex:12a0", "000012A0"),
     ("12a0", "000012A0"), ("00004768", "00004768"), ("7", "00000007")],
)  # fmt: skip
def test_explicit_id_forms(env: dict[str, str], typed: str, sent: str) -> None:
    result = run("pbx", "call-hold", "--user", "u", "--call-id", typed, "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"<param2>{sent}</param2>" in result.stdout


def test_missing_credentials_exit_2(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLBRIDGE_PBX__USER")
    monkeypatch.delenv("CALLBRIDGE_PBX__PASSWORD")
    result = run("pbx", "call-hold", "--user", "u", "--call-id", "1", "--dry-run")
    assert result.exit_code == 2
    for name in ("CALLBRIDGE_PBX__USER", "CALLBRIDGE_PBX__PASSWORD", "_PASSWORD_MD5"):
        assert name in result.stderr


def test_invalid_setting_exit_2(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBRIDGE_PBX__CONNECT_TIMEOUT", "abc")
    result = run("pbx", "call-hold", "--user", "u", "--call-id", "1", "--dry-run")
    assert result.exit_code == 2
    assert "CALLBRIDGE_PBX__CONNECT_TIMEOUT" in result.stderr


# --- real sends ---------------------------------------------------------------------------------


class _Pbx(FakeHttpService):
    """The PBX's SOAP endpoint: answers every request with ``status`` and ``body``."""

    def __init__(self) -> None:
        super().__init__()
        self.status = 200
        self.body = b""

    def route(self, request: FakeRequest) -> FakeAnswer:
        return FakeAnswer(self.status, self.body, content_type="text/xml; charset=utf-8")


@pytest.fixture
def pbx(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[_Pbx]:
    with _Pbx() as state:
        monkeypatch.setenv("CALLBRIDGE_PBX__SOAP_URL", f"{state.url}/")
        yield state


def test_send_call_req(pbx: _Pbx) -> None:
    pbx.body = (
        f'<s:Envelope xmlns:s="{SOAP}"><s:Body><v:CallReqResponse xmlns:v="urn:vspbx">'
        "<user_call_id>000012A1</user_call_id></v:CallReqResponse></s:Body></s:Envelope>"
    ).encode()
    result = run("pbx", *COMMANDS[0][1])
    assert result.exit_code == 0, result.output
    assert "CallReq: accepted by the PBX" in result.stdout
    assert "external_id: cb-cli-1" in result.stdout
    assert "user_call_id: 000012A1" in result.stdout
    assert len(pbx.requests) == 1
    assert PASSWORD_HASH.encode() in pbx.requests[0].raw  # sent, but never printed
    assert PASSWORD_HASH not in result.output
    as_json = json.loads(run("pbx", *COMMANDS[0][1], "--json").stdout)
    assert as_json == {
        "command": "CallReq",
        "external_id": "cb-cli-1",
        "ok": True,
        "values": {"user_call_id": "000012A1"},
    }


def test_fault_exits_1_readably(pbx: _Pbx) -> None:
    pbx.status = 500
    pbx.body = (
        f'<s:Envelope xmlns:s="{SOAP}"><s:Body><s:Fault><faultcode>s:Client</faultcode>'
        "<faultstring>unknown call</faultstring></s:Fault></s:Body></s:Envelope>"
    ).encode()
    result = run("pbx", "call-hold", "--user", "u@acme", "--call-id", "1")
    assert result.exit_code == 1
    assert "callbridge pbx: SOAP fault s:Client: unknown call" in result.stderr
    assert "Traceback" not in result.output


def test_5xx_on_call_req_exits_1_without_resending(pbx: _Pbx) -> None:
    pbx.status = 503
    result = run("pbx", *COMMANDS[0][1])
    assert result.exit_code == 1
    assert "may have acted" in result.stderr
    assert "cb-cli-1" in result.stderr
    assert len(pbx.requests) == 1


def test_unreachable_exits_1(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBRIDGE_PBX__RETRY_ATTEMPTS", "1")
    result = run("pbx", "call-hold", "--user", "u@acme", "--call-id", "1")
    assert result.exit_code == 1
    assert "cannot reach the PBX" in result.stderr
    assert "Traceback" not in result.output


def test_real_process_dry_run(env: dict[str, str]) -> None:
    exe = ROOT / ".venv" / "bin" / "callbridge"
    if not exe.exists():
        pytest.skip(f"{exe} is not installed (run make bootstrap)")
    done = subprocess.run(
        [str(exe), "pbx", *COMMANDS[0][1], "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert "<vspbx:CallReq>" in done.stdout
    assert PASSWORD_HASH not in done.stdout + done.stderr
    bad = subprocess.run(
        [str(exe), "pbx", "call-hold", "--user", "u", "--call-id", "1", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env, "CALLBRIDGE_PBX__CONNECT_TIMEOUT": "abc"},
        check=False,
    )
    assert bad.returncode == 2
    assert "CALLBRIDGE_PBX__CONNECT_TIMEOUT" in bad.stderr
    assert "Traceback" not in bad.stderr
