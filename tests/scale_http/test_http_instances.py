"""Two ``callbridge serve --role http`` instances and one ``--role engine`` on one Redis: an
agent's stream works on whichever instance it reaches, Last-Event-ID replay included, and an
instance killed with -9 loses nothing (everything it acked is in Redis)."""

from __future__ import annotations

from pathlib import Path

from http_scale_support import agent_stream, need_redis, pop_states, post_event, role_service
from redis_support import start_redis
from server_support import wait_until
from service_support import Service, call_events

ALL_POPS = ["ringing", "answered", "ended"]
#: Streams read the journal at each heartbeat anyway: with two minutes, a pop that arrives
#: within the tests' 30 s came through Redis's doorbell, not through a periodic re-read.
SLOW_HEARTBEAT = {"CALLBRIDGE_SERVER__HEARTBEAT": "120"}


def test_stream_on_one_instance_gets_pops_for_events_posted_to_another(tmp_path: Path) -> None:
    need_redis()
    redis = start_redis(tmp_path / "redis")
    journal = redis.url("scale")
    engine = role_service(tmp_path / "engine", journal, "engine")
    first = role_service(tmp_path / "http1", journal, "http", **SLOW_HEARTBEAT)
    second = role_service(tmp_path / "http2", journal, "http", **SLOW_HEARTBEAT)
    started: list[Service] = []
    try:
        for service in (engine, first, second):
            started.append(service.start())
        reader = agent_stream(first)
        assert reader.status == 200
        wait_until(lambda: "connected" in reader.comments(), "the stream on instance 1")
        for params in call_events("0000AC01"):
            response = post_event(second, params)
            assert response.status_code == 200, response.text
        reader.wait_for(lambda _: pop_states(reader, "0000AC01") == ALL_POPS, "pops on 1")
        first_ids = [m.id for m in reader.events()]

        first.kill()  # kill -9: its stream dies with it, nothing it held was only its own
        reader.close()
        for params in call_events("0000AC02"):  # a call ringing after the kill
            assert post_event(second, params).status_code == 200

        replay = agent_stream(second, **{"Last-Event-ID": str(first_ids[0])})
        try:
            assert replay.status == 200
            replay.wait_for(lambda _: pop_states(replay, "0000AC02") == ALL_POPS, "pops on 2")
            ids = [m.id for m in replay.events()]
            assert ids == sorted(set(ids)), ids  # in order, none twice
            assert ids[0] > first_ids[0]
            assert pop_states(replay, "0000AC01") == ALL_POPS[1:]  # after the id it named
        finally:
            replay.close()
    finally:
        for service in reversed(started):
            service.kill() if service is first else service.stop()
        redis.stop()
