"""Settings and credentials: every login mode, renewal, clear messages, no secret leaks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sf_fake import FakeOrg
from sf_helpers import make_call, make_record

from callbridge import ConfigurationError, RetryLater, read_settings
from callbridge_salesforce.plugin import SalesforcePlugin
from callbridge_salesforce.settings import ENV_PREFIX, SalesforceSettings

Make = Callable[..., SalesforcePlugin]
Sessions = Callable[[], requests.Session]
NUMBER = "+390612345678"


def _settings(**values: object) -> SalesforceSettings:
    return SalesforceSettings(_env_file=None, **values)  # type: ignore[arg-type]


# --- messages -----------------------------------------------------------------------------


def test_nothing_set_lists_every_mode() -> None:
    with pytest.raises(ConfigurationError) as info:
        _settings().auth()
    text = str(info.value)
    for name in ("USERNAME", "SECURITY_TOKEN", "PRIVATE_KEY_FILE", "CONSUMER_SECRET", "SESSION_ID"):
        assert f"{ENV_PREFIX}{name}" in text


@pytest.mark.parametrize(
    ("values", "missing"),
    [
        ({"username": "u", "password": "p"}, ["SECURITY_TOKEN"]),
        ({"password": "p"}, ["USERNAME", "SECURITY_TOKEN"]),
        ({"username": "u", "consumer_key": "k"}, ["PRIVATE_KEY_FILE or"]),
        ({"consumer_key": "k", "consumer_secret": "s"}, ["DOMAIN"]),
        ({"session_id": "x"}, ["INSTANCE_URL"]),
        ({"instance_url": "https://acme.my.salesforce.com"}, ["SESSION_ID"]),
        ({"auth_mode": "jwt", "private_key": "k"}, ["USERNAME", "CONSUMER_KEY"]),
    ],
)
def test_incomplete_sets_name_what_is_missing(values: dict[str, str], missing: list[str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        _settings(**values).auth()
    for name in missing:
        assert f"{ENV_PREFIX}{name}" in str(info.value)
    for secret in ("p", "s", "x", "k"):
        assert f"={secret}" not in str(info.value)


def test_no_credentials_at_all_is_not_configured() -> None:
    from callbridge import NotConfigured

    with pytest.raises(NotConfigured, match="SESSION_ID"):
        SalesforcePlugin().configure(_settings(objects="Lead"))
    with pytest.raises(ConfigurationError, match="SECURITY_TOKEN"):
        SalesforcePlugin().configure(_settings(username="u", password="p"))


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PRIVATE_KEY_FILE"):
        _settings(username="u", consumer_key="k", private_key_file=tmp_path / "nope.pem").auth()


def test_environment_values_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}OBJECTS", "Contact,Opportunity")
    monkeypatch.setenv(f"{ENV_PREFIX}TASK_EXTERNAL_ID_FIELD", "bad field")
    monkeypatch.setenv(f"{ENV_PREFIX}OWNER_MAP", "201")
    with pytest.raises(ConfigurationError) as info:
        read_settings(SalesforceSettings, ENV_PREFIX, _env_file=None)
    text = str(info.value)
    assert f"{ENV_PREFIX}OBJECTS" in text
    assert f"{ENV_PREFIX}TASK_EXTERNAL_ID_FIELD" in text
    assert f"{ENV_PREFIX}OWNER_MAP" in text


def test_environment_lists_and_maps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}OBJECTS", "lead, contact")
    monkeypatch.setenv(f"{ENV_PREFIX}OWNER_MAP", "201=005000000000001AAA, 202=anna@x.example")
    monkeypatch.setenv(f"{ENV_PREFIX}API_VERSION", "v61")
    settings = read_settings(SalesforceSettings, ENV_PREFIX, _env_file=None)
    assert settings.objects == ["Lead", "Contact"]
    assert settings.owner_map == {"201": "005000000000001AAA", "202": "anna@x.example"}
    assert settings.api_version == "61.0"


def test_secrets_never_in_repr() -> None:
    settings = _settings(
        username="u@x.example",
        password="hunter2-pw",
        security_token="tok-abc-123",
        consumer_secret="cs-secret-9",
        session_id="00D!session-secret",
        private_key="-----BEGIN KEY-----secretkey",
        instance_url="https://acme.my.salesforce.com",
    )
    auth = settings.auth()
    plugin = SalesforcePlugin()
    plugin.configure(settings)
    text = " ".join(repr(x) for x in (settings, auth, plugin, plugin.client)) + str(settings)
    for secret in ("hunter2-pw", "tok-abc-123", "cs-secret-9", "session-secret", "secretkey"):
        assert secret not in text


# --- modes against the fake ---------------------------------------------------------------


def test_client_credentials_login_and_renewal(
    org: FakeOrg, make_plugin: Make, login_session: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    org.insert("Contact", LastName="Rossi", Phone=NUMBER)
    plugin = make_plugin(
        session_factory=login_session,
        session_id=None,
        instance_url=None,
        consumer_key=org.client_id,
        consumer_secret=org.client_secret,
        domain="acme.my",
    )
    assert plugin.lookup_contact(number=NUMBER, call=make_call()) is not None
    assert org.logins == 1
    org.expire_sessions()  # the org revokes every session while a delivery is pending
    ref = plugin.log_call(make_record(make_call()))
    assert ref is not None
    assert org.logins == 2
    assert len(org.tasks()) == 1
    assert org.client_secret not in caplog.text
    for token in org.sessions:
        assert token not in caplog.text


def test_password_login(org: FakeOrg, make_plugin: Make, login_session: Sessions) -> None:
    plugin = make_plugin(
        session_factory=login_session,
        session_id=None,
        instance_url=None,
        username=org.username,
        password=org.password,
        security_token=org.security_token,
        domain="test",
    )
    assert plugin.log_call(make_record(make_call())) is not None
    assert org.logins == 1


def test_jwt_bearer_login(
    org: FakeOrg, make_plugin: Make, login_session: Sessions, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    org.jwt_public_key = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    pem = tmp_path / "server.key"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    plugin = make_plugin(
        session_factory=login_session,
        session_id=None,
        instance_url=None,
        username=org.username,
        consumer_key=org.client_id,
        private_key_file=pem,
    )
    assert plugin.log_call(make_record(make_call())) is not None
    assert org.logins == 1


def test_wrong_credentials_keep_the_work(
    org: FakeOrg, make_plugin: Make, login_session: Sessions
) -> None:
    plugin = make_plugin(
        session_factory=login_session,
        session_id=None,
        instance_url=None,
        consumer_key=org.client_id,
        consumer_secret="wrong-secret-value",
        domain="acme.my",
    )
    with pytest.raises(RetryLater, match="login failed") as info:
        plugin.log_call(make_record(make_call()))
    assert "wrong-secret-value" not in str(info.value)
    assert info.value.retry_after == 600
    assert org.tasks() == []


def test_expired_direct_session_waits_for_a_new_one(org: FakeOrg, make_plugin: Make) -> None:
    plugin = make_plugin()
    org.expire_sessions()
    with pytest.raises(RetryLater, match="SESSION_ID") as info:
        plugin.log_call(make_record(make_call()))
    assert info.value.retry_after == 600
    # The admin sets a new session id and restarts: the pending delivery goes through.
    assert make_plugin().log_call(make_record(make_call())) is not None
    assert len(org.tasks()) == 1


def test_unreachable_salesforce_is_retried(
    make_settings: Callable[..., SalesforceSettings],
) -> None:
    plugin = SalesforcePlugin()
    plugin.configure(make_settings(instance_url="https://127.0.0.1:9", timeout=5))
    with pytest.raises(RetryLater, match="ConnectionError"):
        plugin.log_call(make_record(make_call()))
