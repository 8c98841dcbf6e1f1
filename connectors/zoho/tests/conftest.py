"""Fixtures of the Zoho connector's tests: the fake Zoho over HTTPS, trusted through
``SSL_CERT_FILE`` (which httpx reads), and plugins configured against it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from zoho_fake import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, FakeZoho

from callbridge.testing import LocalCa
from callbridge_zoho.plugin import ZohoPlugin
from callbridge_zoho.settings import ZohoSettings


@pytest.fixture(scope="session")
def zoho_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCa:
    return LocalCa(tmp_path_factory.mktemp("zoho-ca"))


@pytest.fixture(autouse=True)
def _trust_the_fake(monkeypatch: pytest.MonkeyPatch, zoho_ca: LocalCa) -> None:
    """httpx trusts the fake's CA; no CALLBRIDGE_ZOHO_* of the machine leaks in."""
    monkeypatch.setenv("SSL_CERT_FILE", str(zoho_ca.pem))
    for name in list(os.environ):
        if name.startswith("CALLBRIDGE_ZOHO_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake(zoho_ca: LocalCa) -> Iterator[FakeZoho]:
    with FakeZoho(ssl_context=zoho_ca.server_context()) as server:
        yield server


@pytest.fixture
def make_plugin(fake: FakeZoho) -> Callable[..., ZohoPlugin]:
    """A new, configured plugin (settings as arguments; a "restart" each call)."""

    def build(**overrides: Any) -> ZohoPlugin:
        values: dict[str, Any] = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            "data_centre": "eu",
            "accounts_url": fake.url,
            "crm_url": "https://crm.zoho.eu",
            "default_region": "IT",
            "timeout": 5.0,
        }
        values.update(overrides)
        plugin = ZohoPlugin()
        plugin.configure(ZohoSettings(**values))
        return plugin

    return build
