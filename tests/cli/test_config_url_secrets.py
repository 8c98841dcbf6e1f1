"""``callbridge config`` never shows a password written into a URL setting.

A plain-string URL setting (the SOAP URL) may carry credentials: it prints with the password
masked, in text and JSON. ``CALLBRIDGE_JOURNAL`` (``redis://user:password@host``) is a
secret for its password only: it prints with that masked, so which backend runs is visible.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from callbridge.cli import main


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("CALLBRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("as_json", [False, True])
def test_url_passwords_are_masked(monkeypatch: pytest.MonkeyPatch, as_json: bool) -> None:
    monkeypatch.setenv("CALLBRIDGE_JOURNAL", "redis://cb:redis-pass-123@redis.example:6379/2")
    monkeypatch.setenv("CALLBRIDGE_PBX__SOAP_URL", "https://soap:soap-pass-456@pbx.example/soap")
    args = ["config", "--json"] if as_json else ["config"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "redis-pass-123" not in result.output
    assert "soap-pass-456" not in result.output
    assert "https://soap:**********@pbx.example/soap" in result.output
    assert "redis://cb:**********@redis.example:6379/2" in result.output


def test_the_journal_backend_is_shown() -> None:
    result = CliRunner().invoke(main, ["config"], catch_exceptions=False)
    [line] = [line for line in result.output.splitlines() if line.startswith("CALLBRIDGE_JOURNAL ")]
    assert line.split() == ["CALLBRIDGE_JOURNAL", "sqlite"]


def test_urls_without_password_are_shown_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBRIDGE_PBX__SOAP_URL", "https://soap@pbx.example:8443/soap?x=1")
    result = CliRunner().invoke(main, ["config"], catch_exceptions=False)
    assert "https://soap@pbx.example:8443/soap?x=1" in result.output


def test_a_password_with_an_at_sign_is_masked_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBRIDGE_PBX__SOAP_URL", "http://cb:pa@ss-789@pbx.example/soap")
    result = CliRunner().invoke(main, ["config"], catch_exceptions=False)
    assert "ss-789" not in result.output
    assert "http://cb:**********@pbx.example/soap" in result.output


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "redis+sentinel://cb:pw-1234@h1:26379,h2/mymaster/0?sentinel_password=sp-5678&wait_replicas=1",
            "redis+sentinel://cb:**********@h1:26379,h2/mymaster/0?sentinel_password=**********&wait_replicas=1",
        ),
        ("redis://h1/0?password=pw-1234&prefix=x", "redis://h1/0?password=**********&prefix=x"),
    ],
)
def test_passwords_in_a_journal_url_query_are_masked(
    monkeypatch: pytest.MonkeyPatch, url: str, shown: str
) -> None:
    monkeypatch.setenv("CALLBRIDGE_JOURNAL", url)
    result = CliRunner().invoke(main, ["config"], catch_exceptions=False)
    assert "1234" not in result.output and "5678" not in result.output
    assert shown in result.output
