"""Fixtures of the Pipedrive connector's tests: the fake Pipedrive (HTTPS), a configured plugin."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pd_fake import API_TOKEN, FakePipedrive

from callbridge.testing import LocalCa
from callbridge_pipedrive.plugin import PipedrivePlugin
from callbridge_pipedrive.settings import PipedriveSettings


@pytest.fixture(scope="session")
def pd_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCa:
    return LocalCa(tmp_path_factory.mktemp("pipedrive-ca"))


@pytest.fixture
def fake(pd_ca: LocalCa) -> Iterator[FakePipedrive]:
    with FakePipedrive(pd_ca) as server:
        yield server


@pytest.fixture
def ca_file(pd_ca: LocalCa) -> Path:
    return pd_ca.pem


@pytest.fixture
def make_plugin(
    fake: FakePipedrive, ca_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., PipedrivePlugin]:
    """A new, configured plugin instance on the same data dir (a "restart" each call)."""
    for name in list(os.environ):
        if name.startswith("CALLBRIDGE_"):
            monkeypatch.delenv(name)

    def build(**overrides: Any) -> PipedrivePlugin:
        values: dict[str, Any] = {
            "company_domain": "acme",
            "api_token": API_TOKEN,
            "api_url": fake.url,
            "oauth_token_url": f"{fake.url}/oauth/token",
            "ca_bundle": ca_file,
            "data_dir": tmp_path / "data",
            "default_region": "IT",
            "timeout": 5.0,
        }
        values.update(overrides)
        plugin = PipedrivePlugin()
        plugin.configure(PipedriveSettings(**values))
        return plugin

    return build
