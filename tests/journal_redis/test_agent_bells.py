"""The agents' doorbell across processes (``listen_agent_bells``): a bell for each agent
message another journal appends, only for its own prefix, and a "re-read everything" bell
after the listener lost its connection (bells published meanwhile are gone)."""

from __future__ import annotations

from pathlib import Path

from redis_support import RedisServer

from callbridge.journal.redis import RedisJournal
from callbridge.journal.sqlite import SqliteJournal
from callbridge.testing import wait_until


def test_bells_for_messages_and_a_reread_after_a_reconnect(redis_server: RedisServer) -> None:
    url = redis_server.unique_url()
    writer, listener, stranger = (
        RedisJournal(url),
        RedisJournal(url),
        RedisJournal(redis_server.unique_url()),
    )
    rings: list[tuple[str | None, int]] = []
    stop = listener.listen_agent_bells(lambda ext, event_id: rings.append((ext, event_id)))
    assert stop is not None
    try:
        wait_until(lambda: (None, 0) in rings, "the first subscription's re-read")
        stranger.append_agent_event("201", "pop", {"n": 0})  # another prefix: no bell here
        first = writer.append_agent_event("201", "pop", {"n": 1})
        wait_until(lambda: ("201", first.id) in rings, "the bell of the message")
        assert [ext for ext, _ in rings] == [None, "201"]

        rings.clear()
        with redis_server.client() as admin:  # as a Redis restart or a network cut would
            assert admin.client_kill_filter(_type="pubsub") >= 1
        wait_until(lambda: (None, 0) in rings, "a re-read for every stream after reconnecting")
        second = writer.append_agent_event("202", "pop", {"n": 2})
        wait_until(lambda: ("202", second.id) in rings, "bells again after reconnecting")
    finally:
        stop()
        for journal in (writer, listener, stranger):
            journal.close()


def test_sqlite_has_no_doorbell_across_processes(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    try:
        assert journal.listen_agent_bells(lambda ext, event_id: None) is None
    finally:
        journal.close()
