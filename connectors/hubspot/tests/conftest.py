"""Fixtures of the HubSpot connector's tests: the fake HubSpot, a configured plugin, calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hs_fake import TOKEN, FakeHubSpot

from callbridge_hubspot.plugin import HubSpotPlugin
from callbridge_hubspot.settings import HubSpotSettings


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    server = FakeHubSpot().start()
    yield server
    server.stop()


@pytest.fixture
def make_plugin(
    fake: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., HubSpotPlugin]:
    """A new, configured plugin instance on the same data dir (a "restart" each call)."""
    for name in list(__import__("os").environ):
        if name.startswith("CALLBRIDGE_"):
            monkeypatch.delenv(name)

    def build(**overrides: Any) -> HubSpotPlugin:
        values: dict[str, Any] = {
            "access_token": TOKEN,
            "api_host": fake.url,
            "data_dir": tmp_path / "data",
            "search_rate": 50.0,
            "default_region": "IT",
            "timeout": 5.0,
        }
        values.update(overrides)
        plugin = HubSpotPlugin()
        plugin.configure(HubSpotSettings(**values))
        return plugin

    return build
