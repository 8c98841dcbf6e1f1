"""``callbridge config`` and settings errors: variables named, secrets masked, exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callbridge.cli import main
from callbridge.errors import ConfigurationError
from callbridge.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("CALLBRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_text_lists_variables_with_secrets_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBRIDGE_PBX__SOAP_URL", "http://pbx.example:8080/soap")
    monkeypatch.setenv("CALLBRIDGE_PBX__USER", "auth-integration@acme")
    monkeypatch.setenv("CALLBRIDGE_PBX__PASSWORD", "very-secret-pw")
    monkeypatch.setenv("CALLBRIDGE_PBX__PASSWORD_MD5", "0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("CALLBRIDGE_INGRESS_TOKEN", "ingress-tok")
    result = run("config")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split(None, 1)[1] for line in result.stdout.splitlines()}
    assert lines["CALLBRIDGE_PBX__SOAP_URL"] == "http://pbx.example:8080/soap"
    assert lines["CALLBRIDGE_PBX__USER"] == "auth-integration@acme"
    assert lines["CALLBRIDGE_PBX__PASSWORD"] == "**********"
    assert lines["CALLBRIDGE_PBX__PASSWORD_MD5"] == "**********"
    assert lines["CALLBRIDGE_INGRESS_TOKEN"] == "**********"
    assert lines["CALLBRIDGE_PBX__NAMESPACE"] == "urn:vspbx"
    assert lines["CALLBRIDGE_PBX__HEADER_USER_ELEMENT"] == "username"
    assert lines["CALLBRIDGE_PBX__RETRY_ATTEMPTS"] == "4"
    for secret in ("very-secret-pw", "0123456789abcdef", "ingress-tok"):
        assert secret not in result.output


def test_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CALLBRIDGE_PBX__SOAP_URL=http://from-dotenv/soap\n")
    assert "http://from-dotenv/soap" in run("config").stdout


def test_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBRIDGE_PBX__PASSWORD", "very-secret-pw")
    result = run("config", "--json")
    data = json.loads(result.stdout)
    assert data["pbx"]["password"] == "**********"
    assert data["pbx"]["password_md5"] is None
    assert data["pbx"]["soap_action"] == "{namespace}#{command}"
    assert "very-secret-pw" not in result.output


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CALLBRIDGE_PBX__CONNECT_TIMEOUT", "abc"),
        ("CALLBRIDGE_PBX__READ_TIMEOUT", "-1"),
        ("CALLBRIDGE_PBX__RETRY_ATTEMPTS", "0"),
        ("CALLBRIDGE_PBX__PASSWORD_MD5", "not-a-hash"),
    ],
)
def test_invalid_variable_is_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        load_settings()
    result = run("config")
    assert result.exit_code == 2
    assert name in result.stderr
    assert "Traceback" not in result.output
    if name.endswith("MD5"):
        assert value not in result.output  # the bad secret is not echoed
