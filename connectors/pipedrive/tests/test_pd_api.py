"""Credentials (API token, OAuth with refresh), Pipedrive's rate limits and error bodies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pd_fake import API_TOKEN, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, FakePipedrive, error_body
from pydantic import ValidationError

from callbridge import PermanentError, RetryLater
from callbridge.testing import make_call, make_plugins, make_record
from callbridge_pipedrive.api import PipedriveRateLimited, PipedriveUncertain
from callbridge_pipedrive.plugin import PipedrivePlugin
from callbridge_pipedrive.settings import PipedriveSettings

NUMBER = "+390612345678"


def test_the_api_token_goes_in_the_header_or_the_query(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    fake.add_person("Mario Rossi", NUMBER)
    assert make_plugin().lookup_contact(NUMBER, make_call(outcome=None)) is not None
    with fake.lock:
        request = fake.requests[-1]
    assert request.headers["x-api-token"] == API_TOKEN
    assert "api_token" not in request.query
    assert make_plugin(token_in="query").lookup_contact(NUMBER, make_call(outcome=None))
    with fake.lock:
        request = fake.requests[-1]
    assert request.query["api_token"] == [API_TOKEN]
    assert "x-api-token" not in request.headers


def test_a_wrong_token_is_permanent_and_names_the_variable_not_the_token(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    plugin = make_plugin(api_token="wrong-token-123456")
    with pytest.raises(PermanentError) as caught:
        plugin.lookup_contact(NUMBER, make_call(outcome=None))
    text = str(caught.value)
    assert "unauthorized access" in text and "CALLBRIDGE_PIPEDRIVE_API_TOKEN" in text
    assert "wrong-token-123456" not in text and "HTTP 401" in text


def test_an_expired_oauth_access_token_is_renewed_once_and_the_request_repeated(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    fake.add_person("Mario Rossi", NUMBER)
    plugin = make_plugin(
        api_token=None, access_token="expired-access-token", refresh_token=REFRESH_TOKEN,
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
    )  # fmt: skip
    assert plugin.lookup_contact(NUMBER, make_call(outcome=None)) is not None
    assert fake.refreshes == 1
    with fake.lock:
        auths = [r.headers.get("authorization", "") for r in fake.requests]
        token_request = next(r for r in fake.requests if r.path == "/oauth/token")
    assert auths[0] == "Bearer expired-access-token"
    assert auths[-1].removeprefix("Bearer ") in fake.access_tokens
    assert token_request.arg("grant_type") == "refresh_token"
    plugin.lookup_contact(NUMBER, make_call(outcome=None))
    assert fake.refreshes == 1  # the new token is kept


def test_a_refused_refresh_token_is_permanent_without_the_secret(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    plugin = make_plugin(
        api_token=None, access_token="expired-access-token",
        refresh_token="revoked-refresh-token", client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )  # fmt: skip
    with pytest.raises(PermanentError) as caught:
        plugin.lookup_contact(NUMBER, make_call(outcome=None))
    assert "Invalid token" in str(caught.value)
    for secret in ("revoked-refresh-token", CLIENT_SECRET, "expired-access-token"):
        assert secret not in str(caught.value)


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"x-ratelimit-limit": "80", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"}, 2.0),
        ({}, 10.0),
    ],
)
def test_a_429_waits_as_pipedrive_says(
    fake: FakePipedrive,
    make_plugin: Callable[..., PipedrivePlugin],
    headers: dict[str, str],
    wait: float,
) -> None:
    body = error_body("Request over limit", errorCode=429)
    fake.fail_next("POST /v1/callLogs", 429, body, headers=headers)
    plugin = make_plugin()
    record = make_record(remote_e164=NUMBER)
    with pytest.raises(PipedriveRateLimited) as caught:
        plugin.log_call(record)
    assert caught.value.retry_after == pytest.approx(wait)
    # Nothing was created: the ledger is clear, the retry writes without an adoption search.
    plugin.log_call(record)
    assert fake.count("GET", "/v1/callLogs") == 0
    assert len(fake.logs_with(record.idempotency_key("pipedrive"))) == 1


def test_a_server_error_is_an_uncertain_retry(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    fake.fail_next("POST /v1/callLogs", 502, error_body("Bad gateway"))
    with pytest.raises(PipedriveUncertain) as caught:
        make_plugin().log_call(make_record(remote_e164=NUMBER))
    assert isinstance(caught.value, RetryLater) and caught.value.retry_after == 5.0


def test_settings_need_a_credential_and_a_company_domain(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="CALLBRIDGE_PIPEDRIVE_API_TOKEN"):
        PipedriveSettings(company_domain="acme")
    with pytest.raises(ValidationError, match="CLIENT_ID"):
        PipedriveSettings(company_domain="acme", access_token="a", refresh_token="r")
    with pytest.raises(ValidationError, match="company domain"):
        PipedriveSettings(company_domain="not a domain", api_token="t")
    settings = PipedriveSettings(company_domain="https://Acme.pipedrive.com/", api_token="t")
    assert settings.company_domain == "acme"
    assert settings.base_url == settings.web_url == "https://acme.pipedrive.com"


def test_callbridge_plugins_shows_the_configuration_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("CALLBRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CALLBRIDGE_DATA_DIR", str(tmp_path))
    plugin = PipedrivePlugin()
    info = make_plugins(plugin).get("pipedrive")
    assert info.state == "not configured"
    assert "CALLBRIDGE_PIPEDRIVE_COMPANY_DOMAIN" in (info.reason or "")
    monkeypatch.setenv("CALLBRIDGE_PIPEDRIVE_COMPANY_DOMAIN", "acme")
    info = make_plugins(PipedrivePlugin()).get("pipedrive")
    assert info.state == "failed" and "CALLBRIDGE_PIPEDRIVE_API_TOKEN" in (info.reason or "")
    monkeypatch.setenv("CALLBRIDGE_PIPEDRIVE_API_TOKEN", "s3cret-token-value")
    info = make_plugins(PipedrivePlugin()).get("pipedrive")
    assert info.state == "active"
    assert "s3cret-token-value" not in repr(info)


def test_workers_meeting_the_same_expired_token_renew_it_once(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    fake.add_person("Mario Rossi", NUMBER)
    plugin = make_plugin(
        api_token=None, access_token="expired-access-token", refresh_token=REFRESH_TOKEN,
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
    )  # fmt: skip
    with ThreadPoolExecutor(6) as pool:
        found = list(
            pool.map(lambda _: plugin.lookup_contact(NUMBER, make_call(outcome=None)), range(6))
        )
    assert all(c is not None for c in found)
    assert fake.refreshes == 1
