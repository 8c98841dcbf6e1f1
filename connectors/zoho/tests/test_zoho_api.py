"""Tokens, data centres and Zoho's error answers, against the fake Zoho over HTTPS."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from zoho_fake import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, FakeZoho

from callbridge import PermanentError, RetryLater
from callbridge.testing import FakeAnswer, FakeClock, FakeRequest
from callbridge_zoho.api import ZohoApi
from callbridge_zoho.plugin import ZohoPlugin
from callbridge_zoho.settings import ZohoSettings

TOKEN_PATH = "/oauth/v2/token"
SEARCH_PATH = "/crm/v7/Contacts/search"
CRITERIA = "(Phone:equals:+390612345678)"


def _settings(fake: FakeZoho, **overrides: object) -> ZohoSettings:
    values: dict[str, object] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "accounts_url": fake.url,
        "timeout": 5.0,
    }
    values.update(overrides)
    return ZohoSettings(**values)  # type: ignore[arg-type]


def _tokens_used(fake: FakeZoho) -> list[str]:
    return [r.headers["authorization"] for r in fake.requests_to("GET", SEARCH_PATH)]


def test_a_token_is_refreshed_before_it_expires(fake: FakeZoho) -> None:
    fake.token_lifetime = 3600
    clock = FakeClock()
    api = ZohoApi(_settings(fake, refresh_margin=300), clock=lambda: clock().timestamp())
    api.search("Contacts", CRITERIA, ["Phone"])
    clock.advance(3600 - 301)
    api.search("Contacts", CRITERIA, ["Phone"])  # 301 s left: still good
    clock.advance(2)
    api.search("Contacts", CRITERIA, ["Phone"])  # 299 s left: refreshed first
    used = _tokens_used(fake)
    assert used[0] == used[1] != used[2]
    assert len(fake.requests_to("POST", TOKEN_PATH)) == 2
    (form, _) = [r.body for r in fake.requests_to("POST", TOKEN_PATH)]
    assert form["grant_type"] == "refresh_token"
    # The API domain is the one the token answer named (the data centre's by default).
    assert api.api_url == fake.url


def test_invalid_token_gets_one_refresh_and_the_request_again(fake: FakeZoho) -> None:
    api = ZohoApi(_settings(fake))
    fake.add("Contacts", Last_Name="Rossi", Phone="+390612345678")
    assert len(api.search("Contacts", CRITERIA, ["Phone"])) == 1
    fake.expire_tokens()  # revoked in Zoho: the next request gets 401 INVALID_TOKEN
    assert len(api.search("Contacts", CRITERIA, ["Phone"])) == 1
    assert len(fake.requests_to("POST", TOKEN_PATH)) == 2
    assert len(fake.requests_to("GET", SEARCH_PATH)) == 3


def test_a_token_refused_twice_is_a_permanent_error_naming_the_settings(fake: FakeZoho) -> None:
    api = ZohoApi(_settings(fake))
    fake.fail_next(SEARCH_PATH, 401, {"code": "INVALID_TOKEN", "details": {},
                                      "message": "invalid oauth token", "status": "error"},
                   times=2)  # fmt: skip
    with pytest.raises(PermanentError, match=r"INVALID_TOKEN.*CALLBRIDGE_ZOHO_REFRESH_TOKEN"):
        api.search("Contacts", CRITERIA, ["Phone"])


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("refresh_token", "1000.wrong.token", "CALLBRIDGE_ZOHO_REFRESH_TOKEN"),
        ("client_secret", "wrong-secret-value", "CALLBRIDGE_ZOHO_CLIENT_SECRET"),
    ],
)
def test_a_refused_refresh_token_names_the_variable_and_not_the_secret(
    fake: FakeZoho, field: str, value: str, named: str
) -> None:
    api = ZohoApi(_settings(fake, **{field: value}))
    with pytest.raises(PermanentError) as caught:
        api.search("Contacts", CRITERIA, ["Phone"])
    assert named in str(caught.value)
    assert value not in str(caught.value) and REFRESH_TOKEN not in str(caught.value)
    assert not fake.requests_to("GET", SEARCH_PATH)


def test_too_many_requests_waits_as_zoho_asks(fake: FakeZoho) -> None:
    api = ZohoApi(_settings(fake, rate_limit_wait=45))
    fake.rate_limit_next(SEARCH_PATH, retry_after="7")
    with pytest.raises(RetryLater, match="TOO_MANY_REQUESTS") as caught:
        api.search("Contacts", CRITERIA, ["Phone"])
    assert caught.value.retry_after == 7
    fake.rate_limit_next(SEARCH_PATH)  # no Retry-After: the configured wait
    with pytest.raises(RetryLater) as caught:
        api.search("Contacts", CRITERIA, ["Phone"])
    assert caught.value.retry_after == 45


def test_outages_and_lost_connections_retry_later(fake: FakeZoho) -> None:
    api = ZohoApi(_settings(fake))
    fake.fail_next(TOKEN_PATH, 503, {"error": "Service Unavailable"})
    with pytest.raises(RetryLater):
        api.search("Contacts", CRITERIA, ["Phone"])
    fake.drop_next(SEARCH_PATH)
    with pytest.raises(RetryLater, match="could not reach Zoho"):
        api.search("Contacts", CRITERIA, ["Phone"])
    assert api.search("Contacts", CRITERIA, ["Phone"]) == []  # 204: no match


def test_a_bad_query_is_permanent_with_zohos_reason(fake: FakeZoho) -> None:
    api = ZohoApi(_settings(fake))
    with pytest.raises(PermanentError, match=r"INVALID_QUERY.*api_name=Nope"):
        api.search("Contacts", "(Nope:equals:1)", ["Phone"])


def test_each_data_centre_has_its_own_hosts() -> None:
    settings = ZohoSettings(
        client_id="id", client_secret="secret-1", refresh_token="refresh-1", data_centre="com.au"
    )  # type: ignore[call-arg]
    api = ZohoApi(settings)
    assert api.accounts_url == "https://accounts.zoho.com.au"
    assert api.api_url == "https://www.zohoapis.com.au"
    assert api.crm_url == "https://crm.zoho.com.au"
    canada = ZohoApi(settings.model_copy(update={"data_centre": "ca"}))
    assert canada.accounts_url == "https://accounts.zohocloud.ca"


def test_the_org_id_is_read_once_unless_set(
    fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin]
) -> None:
    plugin = make_plugin()
    assert (
        plugin.record_url("Contacts", "1") == "https://crm.zoho.eu/crm/org20071234/tab/Contacts/1"
    )
    assert plugin.record_url("Leads", "2").endswith("/crm/org20071234/tab/Leads/2")
    assert len(fake.requests_to("GET", "/crm/v7/org")) == 1
    configured = make_plugin(org_id="555")
    assert configured.record_url("Accounts", "3") == (
        "https://crm.zoho.eu/crm/org555/tab/Accounts/3"
    )
    assert len(fake.requests_to("GET", "/crm/v7/org")) == 1


def test_threads_share_one_token_and_keep_to_the_concurrency_limit(
    fake: FakeZoho, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_flight, most = 0, 0
    lock = threading.Lock()
    route = fake.route

    def slow_route(request: FakeRequest) -> FakeAnswer:
        nonlocal in_flight, most
        if not request.path.endswith("/search"):
            return route(request)
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.1)
        with lock:
            in_flight -= 1
        return route(request)

    monkeypatch.setattr(fake, "route", slow_route)
    api = ZohoApi(_settings(fake, max_concurrency=2))
    threads = [
        threading.Thread(target=api.search, args=("Contacts", CRITERIA, ["Phone"]))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(fake.requests_to("GET", SEARCH_PATH)) == 6
    assert len(fake.requests_to("POST", TOKEN_PATH)) == 1  # one refresh, the others waited
    assert most == 2
