"""The ``redis+sentinel://`` journal URL and the journal's options: what they name, and clear
configuration errors (the password never shown) for what they cannot be."""

from __future__ import annotations

import pytest
from redis_support import free_port

from callbridge.errors import ConfigurationError
from callbridge.journal.redis import RedisJournal, redact_url
from callbridge.journal.redis.connection import split_url

SECRET = "s3cr3t-Pa55"


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_options() -> None:
    url = (
        f"redis+sentinel://app:{SECRET}@h1:26380,[::1],h3/mymaster/2"
        "?prefix=acme&wait_replicas=1&wait_timeout=250&sentinel_password=pw"
    )
    read = split_url(url)
    assert read.sentinel is not None
    assert read.sentinel.sentinels == [("h1", 26380), ("::1", 26379), ("h3", 26379)]
    assert (read.sentinel.service, read.sentinel.db) == ("mymaster", 2)
    assert (read.sentinel.username, read.sentinel.password) == ("app", SECRET)
    assert read.sentinel.sentinel_password == "pw"
    assert (read.prefix, read.wait_replicas, read.wait_timeout_ms) == ("acme", 1, 250)
    assert SECRET not in read.shown and SECRET not in repr(read)
    assert read.shown == "redis+sentinel://app:***@h1:26380,[::1],h3/mymaster/2"


def test_plain_urls_take_the_wait_options_too() -> None:
    read = split_url("redis://127.0.0.1:6379/0?wait_replicas=2&socket_timeout=3")
    assert (read.wait_replicas, read.wait_timeout_ms, read.sentinel) == (2, 1000, None)
    assert read.clean == "redis://127.0.0.1:6379/0?socket_timeout=3"  # the rest for redis-py


def test_unreachable_sentinels_are_a_clear_error() -> None:
    url = f"redis+sentinel://:{SECRET}@127.0.0.1:{free_port()}/mymaster/0"
    with pytest.raises(ConfigurationError, match="cannot use Redis at redis\\+sentinel://") as c:
        RedisJournal(url)
    assert SECRET not in str(c.value)
    assert redact_url(url) in str(c.value)
