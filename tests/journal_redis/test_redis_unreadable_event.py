"""Redis: a stream entry that cannot be rebuilt comes back as an unknown event, and the
entries after it are read as usual (the dispatcher would otherwise stop at it for good)."""

from __future__ import annotations

from redis_support import RedisServer

from callbridge.journal.redis import RedisJournal
from callbridge.voispeed.events import CallIncoming, UnknownEvent, parse_event


def _params(call_id: str) -> dict[str, str]:
    return {"ssn_event": "16", "call_id": call_id, "number": "06", "ext": "201"}


def test_a_damaged_stream_entry_does_not_stop_the_read(
    redis_server: RedisServer, redis_journal: RedisJournal
) -> None:
    journal = redis_journal
    first = journal.append_event(parse_event(_params("00000001")), raw=_params("00000001")).seq
    client = redis_server.client()
    # An entry as a bad migration or a hand edit would leave it: neither form makes an event.
    bad = int(client.incr(f"{journal.prefix}:events:seq"))
    client.xadd(
        f"{journal.prefix}:events",
        {
            "at": "0",
            "source": "http",
            "key": "k",
            "raw": "[1,",
            "kind": "CallIncoming",
            "parsed": "{",
        },
        id=f"{bad}-0",
    )
    last = journal.append_event(parse_event(_params("00000003")), raw=_params("00000003")).seq

    stored = journal.events_after(0)

    assert [s.seq for s in stored] == [first, bad, last]
    assert isinstance(stored[0].event, CallIncoming)
    assert isinstance(stored[1].event, UnknownEvent)
    assert stored[1].event.ssn_event == 0
    assert isinstance(stored[2].event, CallIncoming)
