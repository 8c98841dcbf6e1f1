"""The connector as the core's plugin manager loads it from its entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
from hs_fake import TOKEN, FakeHubSpot

from callbridge import Settings
from callbridge.testing import PluginInfo, load_plugins
from callbridge_hubspot.plugin import HubSpotPlugin


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("CALLBRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def _hubspot(settings: Settings) -> PluginInfo:
    plugins = load_plugins(settings, builtins=False)
    return next(i for i in plugins.infos if i.name == "hubspot")


def test_not_configured_without_variables(clean_env: None, tmp_path: Path) -> None:
    info = _hubspot(Settings(data_dir=tmp_path))
    assert info.state == "not configured"


def test_active_with_a_token_and_uses_core_settings(
    clean_env: None, fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_API_HOST", fake.url)
    info = _hubspot(Settings(data_dir=tmp_path / "core", default_region="IT"))
    assert info.state == "active", info.reason
    assert {"lookup_contact", "log_call", "register_routes", "startup", "shutdown"} <= set(
        info.hooks
    )
    assert TOKEN not in repr(info)
    assert isinstance(info.plugin, HubSpotPlugin)
    assert info.plugin.ledger().path.parent == tmp_path / "core"


def test_invalid_variables_fail_with_their_names(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_SEARCH_RATE", "lots")
    info = _hubspot(Settings(data_dir=tmp_path))
    assert info.state == "failed"
    assert "CALLBRIDGE_HUBSPOT_SEARCH_RATE" in (info.reason or "")
    assert TOKEN not in (info.reason or "")
