"""``Journal.prune`` on SQLite and Redis alike: it removes what is finished and older than the
cutoff, and keeps what it must (events the dispatcher has not passed, pending deliveries,
unsettled calls, anything younger than the cutoff). ``dry_run`` counts and changes nothing.

Items are written in two phases around a cutoff instant taken between them, since most of
them are stamped by the journal with the time they are written.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from redis_support import Backend

from callbridge.journal.base import DeliveryState, Journal
from callbridge.models import Call, CallState, Direction, Originate
from callbridge.voispeed.events import parse_event

LONG_AGO = timedelta(days=40)


def _call(key: str, ring_at: datetime, state: CallState = CallState.ENDED) -> Call:
    return Call.model_validate(
        {
            "key": key,
            "company_id": "1",
            "user_call_id": key.split(":")[-1],
            "direction": Direction.INBOUND,
            "state": state,
            "extension": "201",
            "remote_number": "0612345678",
            "ring_at": ring_at,
        }
    )


def _event(journal: Journal, call_id: str, at: datetime) -> int:
    params = {"ssn_event": "16", "call_id": call_id, "number": "06", "ext": "201"}
    return journal.append_event(parse_event(params), raw=params, received_at=at).seq


def _cutoff_now() -> datetime:
    """An instant strictly after everything written so far and before anything written next."""
    cutoff = datetime.now(UTC)
    while datetime.now(UTC) <= cutoff + timedelta(microseconds=10):
        time.sleep(0.001)
    return cutoff


def _fill(journal: Journal) -> tuple[datetime, dict[str, int]]:
    old = datetime.now(UTC) - LONG_AGO
    seqs = {name: _event(journal, f"0000000{i}", old) for i, name in enumerate("abc", 1)}
    journal.set_cursor("dispatcher", seqs["b"])  # c is old but not handled yet
    journal.set_cursor("mysql:pbx", 1)  # a source's position: holds no event back
    journal.append_agent_event("201", "pop", {"n": 1})
    journal.record_rejected(raw="token=***", reason="token invalid", remote="10.0.0.9")
    journal.save_call(_call("1:SETTLED", old), settled=True)
    journal.save_call(_call("1:OPEN", old, CallState.RINGING))
    journal.save_call(_call("1:WAITING", old), settled=True)
    payload = {"n": 1}
    done = journal.enqueue_delivery(
        call_key="1:SETTLED", plugin="crm", action="log_call", payload=payload
    )
    journal.complete_delivery(done.id, {"ok": True})
    dead = journal.enqueue_delivery(
        call_key="1:X", plugin="crm", action="log_call", payload=payload
    )
    journal.fail_delivery(dead.id, error="refused", next_attempt_at=None)
    journal.enqueue_delivery(call_key="1:WAITING", plugin="crm", action="log_call", payload=payload)
    journal.create_originate(Originate(external_id="cb-old", user="u", number="1", created_at=old))

    cutoff = _cutoff_now()

    now = datetime.now(UTC)
    seqs["d"] = _event(journal, "00000004", now)
    journal.append_agent_event("201", "pop", {"n": 2})
    journal.record_rejected(raw="token=***", reason="token invalid", remote="10.0.0.9")
    journal.save_call(_call("1:YOUNG", now), settled=True)
    young = journal.enqueue_delivery(
        call_key="1:YOUNG", plugin="crm", action="log_call", payload=payload
    )
    journal.complete_delivery(young.id, None)
    journal.create_originate(Originate(external_id="cb-new", user="u", number="1", created_at=now))
    return cutoff, seqs


EXPECTED = {
    "events": 2,
    "agent_events": 1,
    "rejected": 1,
    "calls": 1,
    "deliveries": 2,
    "originates": 1,
    "wrapups": 0,
    "recordings": 0,
}


def test_dry_run_counts_and_changes_nothing(backend: Backend) -> None:
    journal = backend.open()
    cutoff, seqs = _fill(journal)

    assert journal.prune(cutoff, dry_run=True) == EXPECTED

    assert [s.seq for s in journal.events_after(0)] == sorted(seqs.values())
    assert len(journal.list_rejected()) == 2
    assert len(journal.list_deliveries()) == 4
    assert journal.get_originate("cb-old") is not None


def test_prune_removes_what_it_may_and_keeps_what_it_must(backend: Backend) -> None:
    journal = backend.open()
    cutoff, seqs = _fill(journal)

    assert journal.prune(cutoff) == EXPECTED

    # events: a and b (handled, old) gone; c (not handled) and d (young) kept
    assert [s.seq for s in journal.events_after(0)] == [seqs["c"], seqs["d"]]
    assert [e.data for e in journal.agent_events_after("201", 0)] == [{"n": 2}]
    assert len(journal.list_rejected()) == 1
    assert journal.get_call("1:SETTLED") is None
    assert journal.get_call("1:OPEN") is not None  # never an unsettled call
    assert journal.get_call("1:WAITING") is not None  # its delivery is still pending
    assert journal.get_call("1:YOUNG") is not None
    assert [c.key for c in journal.list_calls(open_only=True)] == ["1:OPEN"]
    left = journal.list_deliveries()
    assert sorted((d.call_key, d.state) for d in left) == [
        ("1:WAITING", DeliveryState.PENDING),
        ("1:YOUNG", DeliveryState.DONE),
    ]
    counts = {(p, s): n for p, s, n in journal.delivery_counts()}
    assert counts == {("crm", "done"): 1, ("crm", "pending"): 1}
    assert journal.get_originate("cb-old") is None
    assert journal.get_originate("cb-new") is not None
    everything = journal.recent_originates(datetime(2000, 1, 1, tzinfo=UTC))
    assert [o.external_id for o in everything] == ["cb-new"]

    # A second pass finds nothing more; new writes still work and number on.
    assert set(journal.prune(cutoff).values()) == {0}
    assert _event(journal, "00000005", datetime.now(UTC)) > seqs["d"]


def test_a_pruned_old_event_sent_again_is_a_new_event(backend: Backend) -> None:
    journal = backend.open()
    old = datetime.now(UTC) - LONG_AGO
    first = _event(journal, "00000001", old)
    _event(journal, "00000002", old)
    journal.set_cursor("dispatcher", first)
    assert journal.prune(datetime.now(UTC))["events"] == 1

    again = _event(journal, "00000001", datetime.now(UTC))

    assert again > first


def test_no_event_is_pruned_before_the_dispatcher_ran_or_past_any_consumer(
    backend: Backend,
) -> None:
    journal = backend.open()
    old = datetime.now(UTC) - LONG_AGO
    seqs = [_event(journal, f"0000000{i}", old) for i in range(1, 5)]
    assert journal.prune(datetime.now(UTC))["events"] == 0  # no dispatcher cursor yet

    journal.set_cursor("dispatcher", seqs[2])
    journal.set_cursor("exporter", seqs[0])  # another consumer, further behind
    assert journal.prune(datetime.now(UTC))["events"] == 1
    assert [s.seq for s in journal.events_after(0)] == seqs[1:]
