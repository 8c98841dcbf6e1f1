"""Redis stopped and started again under a ``--role http`` and a ``--role engine`` service.

While Redis is away the ingress answers 503 (the PBX retries) and acks nothing, both roles'
``/readyz`` say why they are not ready, and once it is back both recover by themselves: the
event refused meanwhile, sent again, is stored once and handled, as is everything acked
before, and an agent stream opened before the outage gets its pops after it."""

from __future__ import annotations

from pathlib import Path

import httpx
from http_scale_support import agent_stream, need_redis, pop_states, post_event, role_service
from redis_support import start_redis
from server_support import wait_until
from service_support import Service, call_events

from callbridge.plugins.builtin.directory import DirectoryPlugin

ALL_POPS = ["ringing", "answered", "ended"]


def readyz(service: Service) -> httpx.Response:
    return httpx.get(f"{service.url}/readyz", timeout=30)


def test_redis_away_means_503_and_not_ready_then_recovery(tmp_path: Path) -> None:
    need_redis()
    redis = start_redis(tmp_path / "redis")
    journal = redis.url("down")
    # A pop within the tests' 30 s came through the doorbell, which reconnected by itself.
    http = role_service(tmp_path / "http", journal, "http", CALLBRIDGE_SERVER__HEARTBEAT="120")
    engine = role_service(tmp_path / "engine", journal, "engine")
    started: list[Service] = []
    try:
        # The HTTP role is ready with no engine anywhere: it needs only the journal.
        started.append(http.start())
        assert readyz(http).json() == {"status": "ready"}
        before, during = call_events("0000DD01"), call_events("0000DD02")
        assert post_event(http, before[0]).status_code == 200
        # The engine role serves its health, not the ingress.
        started.append(engine.start())
        assert httpx.get(f"{engine.url}/pbx/events", timeout=30).status_code == 404
        for params in before[1:]:
            assert post_event(http, params).status_code == 200

        reader = agent_stream(http)
        wait_until(lambda: "connected" in reader.comments(), "the agent's stream")
        redis.stop()
        refused = post_event(http, during[0])
        assert refused.status_code == 503, refused.text
        assert "retry" in refused.text
        for service in (http, engine):
            answer = readyz(service)
            assert answer.status_code == 503
            assert any(p.startswith("journal:") for p in answer.json()["problems"])

        redis.start()  # same port, same append-only file
        for service in (http, engine):
            wait_until(lambda s=service: readyz(s).status_code == 200, f"{service.url} ready again")
        for params in during:  # the PBX retries the refused event, then the call goes on
            response = post_event(http, params)
            assert response.status_code == 200, response.text
            assert response.text.startswith("ok ")

        reader.wait_for(lambda _: pop_states(reader, "0000DD02") == ALL_POPS, "pops after")
        reader.close()
        directory = DirectoryPlugin.open(engine.data_dir / "directory.sqlite3")
        wait_until(lambda: len(directory.list_activities(10)) == 2, "both calls' activities")
        keys = sorted(a.call_key[-8:] for a in directory.list_activities(10))
        assert keys == ["0000DD01", "0000DD02"]
    finally:
        for service in reversed(started):
            service.stop()
        redis.stop()
