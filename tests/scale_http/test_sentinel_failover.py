"""Redis behind Sentinel, with real processes: a master, a replica and three Sentinels on
local ports, and ``callbridge serve --role http`` on a ``redis+sentinel://`` journal URL with
``wait_replicas=1``.

The master is killed with -9. While no replica can confirm a write the ingress answers 503
(the PBX retries) and acks nothing; once the Sentinels promoted the replica and the old master
came back as the new one's replica, events are accepted again, and every event acked before
or after the failover is in the journal: none was acked on the master alone. A second service
on the same Sentinels without ``wait_replicas`` takes events again as soon as the replica is
promoted."""

from __future__ import annotations

from pathlib import Path

import httpx
from http_scale_support import (
    need_redis,
    post_event,
    replication_up,
    role_service,
    start_sentinels,
)
from redis_support import start_redis
from server_support import wait_until

from callbridge.journal.redis import RedisJournal


def ringing(n: int) -> dict[str, str]:
    """A ringing event of its own call, so every event is a new one."""
    return {
        "call_id": f"{n:08X}",
        "company_id": "1",
        "sender_type": "0",
        "ssn_event": "16",
        "number": "0612345678",
        "ext": "201",
    }


def test_failover_keeps_accepting_and_loses_no_acked_event(tmp_path: Path) -> None:
    need_redis()
    master = start_redis(tmp_path / "master")
    replica = start_redis(
        tmp_path / "replica", extra=["--replicaof", "127.0.0.1", str(master.port)]
    )
    sentinels = start_sentinels(tmp_path, master.port)
    url = sentinels.url("prefix=ha&wait_replicas=1&wait_timeout=2000")
    http = role_service(tmp_path / "http", url, "http")
    # The same without WAIT: acks as soon as the master has an event, so it accepts events
    # again as soon as the replica is promoted (and could lose what was not replicated yet).
    eager = role_service(tmp_path / "eager", sentinels.url("prefix=ha"), "http")
    acked: list[int] = []
    refused = 0

    def post(n: int) -> int:
        nonlocal refused
        status = post_event(http, ringing(n)).status_code
        assert status in (200, 503)
        if status == 200:
            acked.append(n)
        else:
            refused += 1
        return status

    # The agents' doorbell follows the failover too: a listener and a writer of agent
    # messages on the Sentinels' URL, as an HTTP service and an engine would be.
    writer = RedisJournal(sentinels.url("prefix=ha"))
    listener = RedisJournal(sentinels.url("prefix=ha"))
    rings: list[tuple[str | None, int]] = []
    stop_bells = listener.listen_agent_bells(lambda ext, event_id: rings.append((ext, event_id)))
    assert stop_bells is not None

    def rung(extension: str) -> bool:
        message = writer.append_agent_event(extension, "pop", {})
        return wait_until(lambda: (extension, message.id) in rings, f"the bell for {extension}")

    try:
        wait_until(lambda: replication_up(replica), "the replica in sync", 60)
        http.start()
        eager.start()
        assert all(post(n) == 200 for n in range(20))
        assert rung("201")

        master.kill()
        numbers = iter(range(20, 10_000))
        assert post(next(numbers)) == 503  # no master, or a new one with no replica yet
        wait_until(lambda: sentinels.master_port() == replica.port, "the failover", 120)
        assert post(next(numbers)) == 503  # promoted, but nothing can confirm a write
        wait_until(
            lambda: post_event(eager, ringing(90_000)).status_code == 200,
            "the service without WAIT accepting events on the new master",
        )
        assert rung("202")  # written to the new master, heard through a new subscription
        not_ready = httpx.get(f"{http.url}/readyz", timeout=30)
        assert not_ready.status_code == 503
        assert "replicas confirmed" in " ".join(not_ready.json()["problems"])
        master.start()  # the Sentinels turn the old master into the new one's replica
        wait_until(lambda: post(next(numbers)) == 200, "events accepted again", 120)
        more = [next(numbers) for _ in range(20)]
        assert [post(n) for n in more] == [200] * 20

        journal = RedisJournal(url)
        try:
            stored = {int(e.raw["call_id"], 16) for e in journal.events_after(0, 100_000)}
        finally:
            journal.close()
        assert set(acked) <= stored, sorted(set(acked) - stored)
        assert len(acked) >= 41
        assert refused >= 2
    finally:
        stop_bells()
        writer.close()
        listener.close()
        eager.stop()
        http.stop()
        sentinels.stop()
        replica.stop()
        master.stop()
