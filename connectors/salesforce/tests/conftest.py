"""Fixtures for the Salesforce connector: a fake org over HTTPS and plugins pointed at it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent))

from sf_fake import FakeOrg

from callbridge.testing import LocalCa
from callbridge_salesforce.plugin import SalesforcePlugin
from callbridge_salesforce.settings import SalesforceSettings


@pytest.fixture(autouse=True)
def _no_salesforce_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings in tests come from arguments only, never from the machine's environment."""
    import os

    for name in list(os.environ):
        if name.startswith("CALLBRIDGE_SALESFORCE_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def sf_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCa:
    return LocalCa(tmp_path_factory.mktemp("sf-ca"))


@pytest.fixture(scope="session")
def sf_ca_file(sf_ca: LocalCa) -> Path:
    return sf_ca.pem


@pytest.fixture
def sf_server(sf_ca: LocalCa) -> Iterator[FakeOrg]:
    with FakeOrg(sf_ca.server_context()) as server:
        yield server


@pytest.fixture
def org(sf_server: FakeOrg) -> FakeOrg:
    return sf_server


MakeSettings = Callable[..., SalesforceSettings]


@pytest.fixture
def make_settings(org: FakeOrg, sf_ca_file: Path) -> MakeSettings:
    """Direct-session settings for the fake org; keyword arguments override any field."""

    def make(**overrides: Any) -> SalesforceSettings:
        values: dict[str, Any] = {
            "session_id": org.new_session(),
            "instance_url": org.url,
            "ca_bundle": sf_ca_file,
            "api_version": org.version,
            "default_region": "IT",
        }
        values.update(overrides)
        return SalesforceSettings(_env_file=None, **values)

    return make


class LoginRedirect(requests.Session):
    """Sends ``https://<domain>.salesforce.com/...`` (the login hosts) to the fake org.

    simple-salesforce builds the login URL from the domain; this is the one seam where the
    test replaces DNS. Everything after login uses the instance URL the fake returns.
    """

    def __init__(self, target: str, ca_file: Path) -> None:
        super().__init__()
        self._target = urlsplit(target)
        self.verify = str(ca_file)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        parts = urlsplit(url)
        if parts.hostname and parts.hostname.endswith(".salesforce.com"):
            url = urlunsplit(parts._replace(netloc=self._target.netloc))
        kwargs.setdefault("timeout", 15)
        kwargs.setdefault("verify", self.verify)  # REQUESTS_CA_BUNDLE would override it
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def login_session(org: FakeOrg, sf_ca_file: Path) -> Callable[[], requests.Session]:
    return lambda: LoginRedirect(org.url, sf_ca_file)


@pytest.fixture
def make_plugin(make_settings: MakeSettings) -> Callable[..., SalesforcePlugin]:
    """A configured plugin (a new instance each call: a "restart")."""

    def make(
        session_factory: Callable[[], requests.Session] | None = None, **overrides: Any
    ) -> SalesforcePlugin:
        plugin = SalesforcePlugin(session_factory=session_factory)
        plugin.configure(make_settings(**overrides))
        return plugin

    return make
