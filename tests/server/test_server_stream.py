"""The agent stream over real HTTP: pops for the right extension only, token checks, replay of
missed messages with ``Last-Event-ID`` (strictly increasing ids, none twice), heartbeats."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from server_support import (
    ADMIN_TOKEN,
    API_TOKEN,
    LiveServer,
    SseMessage,
    SseReader,
    Stack,
    make_settings,
)

from callbridge.engine.bus import AgentBus
from callbridge.journal.sqlite import SqliteJournal
from callbridge.server.app import create_app
from callbridge.server.services import Services
from callbridge.testing import wait_until

REMOTE = "0612345678"


def call_events(call_id: str, ext: str = "201") -> list[dict[str, str]]:
    """16, 18, 21: ``REMOTE`` calls ``ext``, who answers and hangs up."""
    base = {"call_id": call_id, "company_id": "1", "sender_type": "0"}
    return [
        {**base, "ssn_event": "16", "number": REMOTE, "ext": ext},
        {**base, "ssn_event": "18", "number": ext, "ext": REMOTE},
        {**base, "ssn_event": "21", "number": REMOTE, "ext": ext},
    ]


def send_call(stack: Stack, call_id: str, ext: str = "201") -> None:
    for params in call_events(call_id, ext):
        response = stack.pbx_event(params)
        assert response.status_code == 200, response.text


def pops_of(messages: list[SseMessage], call_id: str) -> list[str]:
    return [
        m.json()["state"]
        for m in messages
        if m.event == "pop" and m.json()["call"]["user_call_id"] == call_id
    ]


def stream(
    stack: Stack, ext: str = "201", token: str | None = API_TOKEN, **headers: str
) -> SseReader:
    sent = dict(headers)
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return SseReader(stack.live.port, f"/v1/agents/{ext}/events", sent)


@pytest.fixture
def readers() -> Iterator[list[SseReader]]:
    opened: list[SseReader] = []
    yield opened
    for reader in opened:
        reader.close()


def test_pops_reach_the_right_extension_only(stack: Stack, readers: list[SseReader]) -> None:
    mario = stream(stack, "201")
    giulia = stream(stack, "202", ADMIN_TOKEN)
    readers += [mario, giulia]
    assert (mario.status, giulia.status) == (200, 200)
    wait_until(lambda: stack.engine.bus.subscriber_count() == 2, "both streams subscribed")
    send_call(stack, "0000AB01", "201")
    mario.wait_for(lambda m: len(pops_of(m, "0000AB01")) == 3, "201's three pops")
    assert pops_of(mario.events(), "0000AB01") == ["ringing", "answered", "ended"]
    pop = next(m.json() for m in mario.events() if m.event == "pop")
    assert pop["call"]["remote_number"] == REMOTE
    assert pop["call"]["extension"] == "201"
    # 202's own call arrives after 201's were published: anything misrouted would be there.
    send_call(stack, "0000AB02", "202")
    giulia.wait_for(lambda m: len(pops_of(m, "0000AB02")) == 3, "202's three pops")
    assert {m.json()["call"]["extension"] for m in giulia.events()} == {"202"}
    assert pops_of(mario.events(), "0000AB02") == []


@pytest.mark.parametrize(
    ("ext", "token", "query", "status"),
    [
        ("202", API_TOKEN, "", 403),
        ("201", None, "", 401),
        ("201", "wrong-token-0123456789", "", 401),
        ("201", None, f"?access_token={API_TOKEN}", 200),
        ("202", None, f"?access_token={API_TOKEN}", 403),
        ("201", API_TOKEN, "?last_event_id=abc", 400),
        ("201", API_TOKEN, "?last_event_id=" + "9" * 30, 400),
        ("201", API_TOKEN, "?last_event_id=" + "9" * 5000, 400),
        ("201", API_TOKEN, "?last_event_id=-5", 200),
    ],
)
def test_stream_auth(
    stack: Stack,
    readers: list[SseReader],
    ext: str,
    token: str | None,
    query: str,
    status: int,
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    reader = SseReader(stack.live.port, f"/v1/agents/{ext}/events{query}", headers)
    readers.append(reader)
    assert reader.status == status, reader.body


def test_access_token_stream_gets_pops(stack: Stack, readers: list[SseReader]) -> None:
    reader = SseReader(stack.live.port, f"/v1/agents/201/events?access_token={API_TOKEN}")
    readers.append(reader)
    wait_until(lambda: stack.engine.bus.subscriber_count() == 1, "subscribed")
    send_call(stack, "0000AC01")
    reader.wait_for(lambda m: len(pops_of(m, "0000AC01")) == 3, "three pops")


def assert_increasing_once(messages: list[SseMessage]) -> list[int]:
    ids = [m.id for m in messages]
    assert all(i is not None for i in ids)
    assert ids == sorted(set(ids)), ids  # type: ignore[type-var]
    return ids  # type: ignore[return-value]


def test_reconnect_replays_exactly_what_was_missed(stack: Stack, readers: list[SseReader]) -> None:
    first = stream(stack)
    readers.append(first)
    wait_until(lambda: stack.engine.bus.subscriber_count() == 1, "subscribed")
    send_call(stack, "0000AD01")
    seen = first.wait_for(lambda m: len(pops_of(m, "0000AD01")) == 3, "first call's pops")
    last = assert_increasing_once(seen)[-1]
    first.close()
    wait_until(lambda: stack.engine.bus.subscriber_count() == 0, "first stream detached")

    # Missed while disconnected.
    send_call(stack, "0000AD02")
    send_call(stack, "0000AD03")
    wait_until(
        lambda: len(stack.journal.agent_events_after("201", last)) == 6, "missed messages stored"
    )
    missed = [e.id for e in stack.journal.agent_events_after("201", last)]

    second = stream(stack, **{"Last-Event-ID": str(last)})
    readers.append(second)
    replayed = second.wait_for(lambda m: len(m) >= 6, "the replay")
    assert [m.id for m in replayed] == missed
    assert pops_of(replayed, "0000AD01") == []
    # Then the live feed goes on, without repeating the replay.
    send_call(stack, "0000AD04")
    everything = second.wait_for(lambda m: len(pops_of(m, "0000AD04")) == 3, "live pops")
    ids = assert_increasing_once(everything)
    assert ids[:6] == missed
    assert len(ids) == 9

    # The query parameter works as well as the header.
    third = SseReader(
        stack.live.port,
        f"/v1/agents/201/events?last_event_id={missed[-1]}",
        {"Authorization": f"Bearer {API_TOKEN}"},
    )
    readers.append(third)
    got = third.wait_for(lambda m: len(m) >= 3, "replay after the query id")
    assert [m.id for m in got] == ids[6:]


def test_heartbeat_comments(stack: Stack, readers: list[SseReader]) -> None:
    reader = stream(stack)
    readers.append(reader)
    wait_until(lambda: reader.comments().count("heartbeat") >= 2, "two heartbeats")
    assert reader.comments()[0] == "connected"


def test_events_published_out_of_order_are_all_delivered(
    tmp_path: Path, readers: list[SseReader]
) -> None:
    """Two dispatcher lanes may publish an agent's messages in another order than their ids:
    the stream must still deliver every one, in id order, none twice."""
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    bus = AgentBus()
    engine = SimpleNamespace(bus=bus, running=True, problem=None, wake=lambda: None)
    settings = make_settings(tmp_path, heartbeat=0.2)
    services = Services(settings=settings, journal=journal, engine=engine)
    live = LiveServer()
    try:
        live.serve(create_app(services))
        reader = SseReader(
            live.port, "/v1/agents/201/events", {"Authorization": f"Bearer {API_TOKEN}"}
        )
        readers.append(reader)
        wait_until(lambda: bus.subscriber_count() == 1, "subscribed")
        a = journal.append_agent_event("201", "pop", {"n": 1})
        b = journal.append_agent_event("201", "pop", {"n": 2})
        bus.publish(b)  # lane B is faster than lane A
        bus.publish(a)
        c = journal.append_agent_event("201", "pop", {"n": 3})
        bus.publish(c)
        got = reader.wait_for(lambda m: len(m) >= 3, "three messages", timeout=10)
        assert [m.id for m in got] == [a.id, b.id, c.id]
    finally:
        for reader in readers:
            reader.close()
        readers.clear()
        live.__exit__(None, None, None)
        journal.close()
