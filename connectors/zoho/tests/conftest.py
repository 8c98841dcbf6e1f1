"""Fixtures of the Zoho connector's tests: the fake Zoho over HTTPS, trusted through
``SSL_CERT_FILE`` (which httpx reads), and plugins configured against it."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from zoho_fake import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, FakeZoho

from callbridge_zoho.plugin import ZohoPlugin
from callbridge_zoho.settings import ZohoSettings


@pytest.fixture(scope="session")
def zoho_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def zoho_ca_file(zoho_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zoho-ca") / "ca.pem"
    zoho_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(autouse=True)
def _trust_the_fake(monkeypatch: pytest.MonkeyPatch, zoho_ca_file: Path) -> None:
    """httpx trusts the fake's CA; no CALLBRIDGE_ZOHO_* of the machine leaks in."""
    monkeypatch.setenv("SSL_CERT_FILE", str(zoho_ca_file))
    for name in list(os.environ):
        if name.startswith("CALLBRIDGE_ZOHO_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake(zoho_ca: trustme.CA) -> Iterator[FakeZoho]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    zoho_ca.issue_cert("127.0.0.1").configure_cert(context)
    with FakeZoho(ssl_context=context) as server:
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
