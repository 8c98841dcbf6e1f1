"""Search pacing (the bucket's schedule, not the wall clock), error mapping, and secrets."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest
from hs_fake import TOKEN, FakeHubSpot
from hs_support import make_call, make_record

from callbridge import PermanentError, RetryLater
from callbridge_hubspot.failures import HubSpotAuthError
from callbridge_hubspot.pacing import TokenBucket
from callbridge_hubspot.plugin import HubSpotPlugin
from callbridge_hubspot.settings import HubSpotSettings

Factory = Callable[..., HubSpotPlugin]


class FakeClock:
    """A clock that moves only when someone sleeps: the schedule is exact and instant."""

    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()

    def time(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_bucket_never_exceeds_the_rate_from_many_threads() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4.0, 1, clock=clock.time, sleep=lambda s: None)
    threads = [
        threading.Thread(target=lambda: [bucket.acquire() for _ in range(10)]) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    schedule = bucket.schedule()
    assert len(schedule) == 80
    assert TokenBucket.max_in_window(schedule, 1.0) == 4
    gaps = [b - a for a, b in zip(sorted(schedule), sorted(schedule)[1:], strict=False)]
    assert min(gaps) == pytest.approx(0.25)


def test_bucket_burst_and_pause() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, 3, clock=clock.time, sleep=clock.sleep)
    for _ in range(3):
        assert bucket.acquire() == 0  # the burst
    assert bucket.acquire() == pytest.approx(0.5)
    bucket.pause(10.0)
    assert bucket.reserve() >= 10.0
    assert TokenBucket.max_in_window(bucket.schedule(), 1.0) <= 3 + 2


def test_lookups_are_paced_through_the_bucket(fake: FakeHubSpot, make_plugin: Factory) -> None:
    plugin = make_plugin(search_rate=20.0, lookup_negative_ttl=0)
    numbers = [f"+3906123456{i:02d}" for i in range(12)]
    threads = [
        threading.Thread(target=plugin.lookup_contact, args=(n, make_call(remote=n)))
        for n in numbers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    schedule = plugin.api.bucket.schedule()
    assert fake.count("POST", "/crm/v3/objects/contacts/search") == len(schedule) == 12
    assert TokenBucket.max_in_window(schedule, 1.0) <= 20
    assert TokenBucket.max_in_window(schedule, 0.05 - 1e-9) == 1


def test_429_on_search_pauses_the_bucket(fake: FakeHubSpot, make_plugin: Factory) -> None:
    plugin = make_plugin()
    fake.rate_limit_next("POST /crm/v3/objects/contacts/search", policy="TEN_SECONDLY_ROLLING")
    with pytest.raises(RetryLater) as caught:
        plugin.lookup_contact("+390612345678", make_call())
    assert caught.value.retry_after == 10.0
    assert "TEN_SECONDLY_ROLLING" in str(caught.value)
    assert plugin.api.bucket.reserve() > 9.0  # the next search waits out the window


def test_wrong_token_is_a_configuration_error(fake: FakeHubSpot, make_plugin: Factory) -> None:
    plugin = make_plugin(access_token="pat-wrong-token")
    with pytest.raises(HubSpotAuthError) as caught:
        plugin.lookup_contact("+390612345678", make_call())
    assert "CALLBRIDGE_HUBSPOT_ACCESS_TOKEN" in str(caught.value)
    assert "INVALID_AUTHENTICATION" in str(caught.value)
    assert "pat-wrong-token" not in str(caught.value)
    assert isinstance(caught.value, PermanentError)


def test_missing_scope_names_the_scope(fake: FakeHubSpot, make_plugin: Factory) -> None:
    fake.tokens[TOKEN] = frozenset({"crm.objects.contacts.read", "oauth"})
    with pytest.raises(HubSpotAuthError) as caught:
        make_plugin().log_call(make_record(make_call()))
    assert "crm.objects.contacts.write" in str(caught.value)
    assert "CALLBRIDGE_HUBSPOT_ACCESS_TOKEN" in str(caught.value)


def test_unreachable_hubspot_is_a_retry(make_plugin: Factory) -> None:
    plugin = make_plugin(api_host="http://127.0.0.1:9", timeout=2.0)
    with pytest.raises(RetryLater):
        plugin.lookup_contact("+390612345678", make_call())


def test_token_never_in_repr_errors_or_logs(
    fake: FakeHubSpot, make_plugin: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    plugin = make_plugin()
    fake.add_contact(firstname="Anna", phone="+390612345678")
    plugin.lookup_contact("+390612345678", make_call())
    fake.fail_next("POST /crm/v3/objects/calls", 400)
    with pytest.raises(PermanentError) as caught:
        plugin.log_call(make_record(make_call()))
    texts = [repr(plugin), repr(plugin.settings), str(plugin.settings), repr(plugin.api),
             str(caught.value), caplog.text]  # fmt: skip
    for text in texts:
        assert TOKEN not in text


def test_settings_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from callbridge import ConfigurationError, read_settings

    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_ACCESS_TOKEN", "pat-x")
    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_OWNERS", "201")
    monkeypatch.setenv("CALLBRIDGE_HUBSPOT_API_HOST", "ftp://x")
    with pytest.raises(ConfigurationError) as caught:
        read_settings(HubSpotSettings, "CALLBRIDGE_HUBSPOT_")
    assert "CALLBRIDGE_HUBSPOT_OWNERS" in str(caught.value)
    assert "CALLBRIDGE_HUBSPOT_API_HOST" in str(caught.value)
    assert "pat-x" not in str(caught.value)
