"""What only the Redis backend has: URLs and prefixes, secrets, the server's durability, and
surviving a kill -9 of redis-server itself."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from redis_support import RedisServer, free_port, start_redis

from callbridge.errors import ConfigurationError
from callbridge.journal.factory import open_journal
from callbridge.journal.redis import SCHEMA_VERSION, RedisJournal, redact_url
from callbridge.settings import Settings
from callbridge.voispeed.events import parse_event

SECRET = "s3cr3t-Pa55"


def _params(call_id: str) -> dict[str, str]:
    return {
        "ssn_event": "16",
        "call_id": call_id,
        "number": "0612345678",
        "ext": "201",
        "company_id": "1",
    }


def test_redact_url_hides_the_password_and_the_query() -> None:
    assert redact_url(f"redis://:{SECRET}@h:1/0?prefix=x") == "redis://:***@h:1/0"
    assert redact_url(f"rediss://app:{SECRET}@h/2") == "rediss://app:***@h/2"
    assert redact_url("redis://h") == "redis://h"
    assert redact_url("redis://[::1]:6380/0") == "redis://[::1]:6380/0"
    assert SECRET not in redact_url(f"redis://:{SECRET}@h:notaport/0")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"redis://:{SECRET}@127.0.0.1:notaport/0", "not a valid Redis URL"),
        (f"redis://:{SECRET}@/0", "expected redis://"),
        (f"http://:{SECRET}@127.0.0.1/0", "expected redis://"),
        (f"redis://:{SECRET}@127.0.0.1/0?prefix=a b", "prefix"),
        (f"redis://:{SECRET}@127.0.0.1/0?prefix=", "prefix"),
        (f"redis://:{SECRET}@h1/0?wait_replicas=one", "wait_replicas must be a whole number"),
        (f"redis+sentinel://:{SECRET}@h1:26379/", "expected redis\\+sentinel://"),
        (f"redis+sentinel://:{SECRET}@h1:notaport/m", "bad Sentinel address"),
        (f"redis+sentinel://:{SECRET}@h1/m/x", "expected redis\\+sentinel://"),
        (f"redis+sentinel://:{SECRET}@h1/m?foo=1", "unknown option foo"),
    ],
)
def test_bad_urls_are_clear_configuration_errors_without_the_secret(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        RedisJournal(url)
    assert SECRET not in str(caught.value)
    assert "CALLBRIDGE_JOURNAL" in str(caught.value)


@pytest.mark.parametrize("option", ["foo=bar", "socket_timeout=abc"])
def test_bad_url_options_are_configuration_errors(redis_server: RedisServer, option: str) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{redis_server.port}/0?prefix=opt&{option}"
    with pytest.raises(ConfigurationError, match="bad option in the Redis URL") as caught:
        RedisJournal(url)
    assert SECRET not in str(caught.value)
    assert option.partition("=")[0] in str(caught.value)


def test_unreachable_server_is_a_clear_error(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigurationError) as caught:
        RedisJournal(url)
    assert "cannot use Redis at redis://:***@127.0.0.1" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in caplog.text


def test_password_never_shows(
    spare_dir: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis(spare_dir("auth"), password=SECRET)
    try:
        with caplog.at_level(logging.DEBUG):
            journal = RedisJournal(server.url("auth"))
            try:
                assert journal.append_event(parse_event(_params("1")), raw=_params("1")).seq == 1
                assert SECRET not in repr(journal)
                assert "***" in repr(journal)
            finally:
                journal.close()
            with pytest.raises(ConfigurationError) as caught:
                RedisJournal(server.url("auth", password="wrong-" + SECRET))
        assert SECRET not in str(caught.value)
        assert SECRET not in caplog.text
    finally:
        server.stop()


def test_durable_server_is_accepted_silently(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="callbridge.journal.redis"):
        journal = RedisJournal(redis_server.unique_url())
    journal.close()
    assert journal.durability == "always"
    assert caplog.records == []


@pytest.mark.parametrize(
    ("durable", "extra", "expected", "warning"),
    [
        (False, [], "off", "appendonly no"),
        (True, ["--appendfsync", "everysec"], "everysec", "appendfsync everysec"),
        (
            True,
            ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"],
            "always",
            "maxmemory-policy allkeys-lru",
        ),
    ],
)
def test_a_server_without_fsync_on_every_write_gets_a_warning(
    spare_dir: Callable[[str], Path],
    caplog: pytest.LogCaptureFixture,
    durable: bool,
    extra: list[str],
    expected: str,
    warning: str,
) -> None:
    server = start_redis(spare_dir("server"), durable=durable, extra=extra, password=SECRET)
    try:
        with caplog.at_level(logging.WARNING, logger="callbridge.journal.redis"):
            journal = RedisJournal(server.url("w"))
        journal.close()
        assert journal.durability == expected
        assert warning in caplog.text
        assert "redis://:***@127.0.0.1" in caplog.text
        assert SECRET not in caplog.text
        # The journal reads the server's settings; it never changes them.
        with server.client() as client:
            assert client.config_get("appendonly")["appendonly"] == ("yes" if durable else "no")
    finally:
        server.stop()


def test_acknowledged_appends_survive_kill_9_of_redis(spare_dir: Callable[[str], Path]) -> None:
    server = start_redis(spare_dir("crash"))
    journal = RedisJournal(server.url("crash"))
    try:
        acked: list[int] = []
        lock = threading.Lock()

        def worker(t: int) -> None:
            for i in range(25):
                params = _params(f"{t:04X}{i:04X}")
                seq = journal.append_event(parse_event(params), raw=params).seq
                with lock:
                    acked.append(seq)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        journal.set_cursor("dispatcher", acked[-1])
        assert len(set(acked)) == 200
        server.kill()

        with pytest.raises(redis.ConnectionError):
            journal.check_writable()

        server.start()  # same directory, same port: replays the append-only file
        # The open journal reconnects by itself.
        after = journal.append_event(parse_event(_params("FFFF0001")), raw=_params("FFFF0001"))
        assert after.seq == 201
        stored = journal.events_after(0, limit=1000)
        assert sorted(e.seq for e in stored) == [*sorted(acked), 201]
        assert journal.get_cursor("dispatcher") == acked[-1]
        again = journal.append_event(parse_event(_params("00000000")), raw=_params("00000000"))
        assert again.duplicate is True
    finally:
        journal.close()
        server.stop()


def test_prefixes_keep_instances_apart(redis_server: RedisServer) -> None:
    one = RedisJournal(redis_server.url("apart1"))
    two = RedisJournal(redis_server.url("apart2"))
    try:
        one.append_event(parse_event(_params("1")), raw=_params("1"))
        one.enqueue_delivery(call_key="1:1", plugin="p", action="log_call", payload={})
        one.append_agent_event("201", "pop", {})
        one.record_rejected(raw="x", reason="y")
        assert two.events_after(0) == []
        assert two.list_deliveries() == []
        assert two.agent_events_after("201", 0) == []
        assert two.list_rejected() == []
        with redis_server.client() as client:
            keys = client.keys("apart1*")
            assert keys
            assert all(key.startswith("apart1:") for key in keys)
            assert client.keys("apart2:*") == ["apart2:meta:schema"]
    finally:
        one.close()
        two.close()


def test_a_newer_layout_is_refused(redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        client.set("newer:meta:schema", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError, match="newer"):
        RedisJournal(redis_server.url("newer"))


def test_check_writable_fails_when_the_server_refuses_writes(
    spare_dir: Callable[[str], Path],
) -> None:
    server = start_redis(spare_dir("ro"))
    journal = RedisJournal(server.url("ro"))
    try:
        journal.check_writable()
        with server.client() as client:
            client.config_set("min-replicas-to-write", 1)  # no replica: writes are refused
        with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
            journal.check_writable()
        with pytest.raises(redis.ResponseError):
            journal.append_event(parse_event(_params("2")), raw=_params("2"))
    finally:
        journal.close()
        server.stop()


def test_open_journal_picks_redis_from_the_environment(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CALLBRIDGE_JOURNAL", f"redis://127.0.0.1:{redis_server.port}/0?prefix=t1")
    monkeypatch.setenv("CALLBRIDGE_DATA_DIR", str(tmp_path))
    journal = open_journal(Settings())
    try:
        assert isinstance(journal, RedisJournal)
        assert journal.prefix == "t1"
        journal.check_writable()
    finally:
        journal.close()
    default = open_journal(Settings(journal=f"redis://127.0.0.1:{redis_server.port}"))
    try:
        assert isinstance(default, RedisJournal)
        assert default.prefix == "callbridge"
    finally:
        default.close()
    with pytest.raises(ConfigurationError, match="redis://"):
        open_journal(Settings(journal="postgres://x"))


def test_appends_recover_when_the_server_forgot_its_scripts(
    redis_journal: RedisJournal, redis_server: RedisServer
) -> None:
    first = redis_journal.append_event(parse_event(_params("A1")), raw=_params("A1"))
    with redis_server.client() as client:
        client.script_flush()
    futures = [
        redis_journal.submit_event(parse_event(_params(f"B{i}")), raw=_params(f"B{i}"))
        for i in range(20)
    ]
    seqs = [f.result(timeout=30).seq for f in futures]
    assert seqs == list(range(first.seq + 1, first.seq + 21))
    redis_journal.enqueue_delivery(call_key="1:x", plugin="p", action="log_call", payload={})


def test_two_instances_on_one_prefix_share_dedup_and_deliveries(redis_server: RedisServer) -> None:
    """The ingress and the engine may be separate processes on one journal: atomicity holds
    across clients because every multi-key write runs as one script on the server."""
    url = redis_server.unique_url()
    one, two = RedisJournal(url), RedisJournal(url)
    try:
        results: dict[str, list[int]] = {"one": [], "two": []}

        def worker(name: str, journal: RedisJournal) -> None:
            for i in range(100):
                params = _params(f"{i:08X}")
                results[name].append(journal.append_event(parse_event(params), raw=params).seq)

        threads = [
            threading.Thread(target=worker, args=("one", one)),
            threading.Thread(target=worker, args=("two", two)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results["one"] == results["two"]
        assert [e.seq for e in one.events_after(0, limit=1000)] == sorted(results["one"])
        a = one.enqueue_delivery(call_key="1:1", plugin="p", action="log_call", payload={})
        b = two.enqueue_delivery(call_key="1:1", plugin="p", action="log_call", payload={})
        assert a.id == b.id
        two.complete_delivery(b.id, {"ok": 1})
        got = one.get_delivery(a.id)
        assert got is not None and got.result == {"ok": 1}
    finally:
        one.close()
        two.close()
