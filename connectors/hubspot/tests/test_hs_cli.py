"""``callbridge hubspot calling-settings`` against the fake HubSpot."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hs_fake import DEVELOPER_KEY, TOKEN, FakeHubSpot

from callbridge.testing import cli_main


@pytest.fixture
def env(fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_API_HOST", fake.url)
    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_PUBLIC_URL", "https://cb.example.com/")


def test_prints_the_settings(env: None) -> None:
    result = CliRunner().invoke(cli_main, ["hubspot", "calling-settings"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["url"] == "https://cb.example.com/plugins/hubspot/calling"
    assert body["isReady"] is True
    assert body["supportsCustomObjects"] is True
    assert {"name", "width", "height"} <= set(body)


def test_apply_registers_then_updates(
    env: None, fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_APP_ID", "314")
    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_DEVELOPER_API_KEY", DEVELOPER_KEY)
    for _ in range(2):  # create, then the 409 turns into an update
        result = CliRunner().invoke(cli_main, ["hubspot", "calling-settings", "--apply"])
        assert result.exit_code == 0, result.output
    assert fake.calling_settings["314"]["url"] == "https://cb.example.com/plugins/hubspot/calling"
    assert DEVELOPER_KEY not in result.output


def test_apply_without_app_is_a_clear_error(env: None) -> None:
    result = CliRunner().invoke(cli_main, ["hubspot", "calling-settings", "--apply"])
    assert result.exit_code == 2
    assert "CALLBRIDGE_HUBSPOT_APP_ID" in result.output


def test_wrong_developer_key(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_APP_ID", "314")
    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_DEVELOPER_API_KEY", "nope")
    result = CliRunner().invoke(cli_main, ["hubspot", "calling-settings", "--apply"])
    assert result.exit_code == 1
    assert "refused" in result.output
