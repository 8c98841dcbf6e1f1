"""The ``Journal`` contract, run against every backend (SQLite and Redis) alike.

Each test uses only the abstract interface, so a backend passing them can replace another
without the tracker, the dispatcher or the HTTP service noticing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from redis_support import Backend

from callbridge.journal import DeliveryState, Journal
from callbridge.journal.base import (
    DuplicateOriginateError,
    JournalClosedError,
    WrapUpConflictError,
)
from callbridge.models import Call, CallState, CrmContext, Direction, Originate, WrapUp
from callbridge.voispeed.events import CallAnswered, CallIncoming, parse_event


def _params(ssn: int, call_id: str = "00000001", **extra: str) -> dict[str, str]:
    params = {
        "ssn_event": str(ssn),
        "call_id": call_id,
        "number": "0612345678",
        "ext": "201",
        "company_id": "1",
    }
    params.update(extra)
    return params


def _append(journal: Journal, params: dict[str, str]) -> int:
    return journal.append_event(parse_event(params), raw=params).seq


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``count`` threads started together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# -- events -----------------------------------------------------------------------------------
def test_append_is_durable_across_reopen_and_typed(backend: Backend) -> None:
    journal = backend.open()
    received = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    params = _params(16, identity="Mario|Rossi|Sales|0|0")
    result = journal.append_event(
        parse_event(params), raw=params, source="mysql", received_at=received
    )
    assert result.duplicate is False
    journal.close()

    again = backend.open()
    (stored,) = again.events_after(0)
    assert stored.seq == result.seq
    assert stored.source == "mysql"
    assert stored.received_at == received
    assert stored.raw == params
    assert stored.dedup_key == parse_event(params).dedup_key
    assert isinstance(stored.event, CallIncoming)
    assert stored.event == parse_event(params)
    assert stored.event.identity is not None
    assert stored.event.identity.surname == "Rossi"


def test_duplicate_append_returns_the_original_and_changes_nothing(journal: Journal) -> None:
    first = journal.append_event(parse_event(_params(16)), raw=_params(16))
    second = _append(journal, _params(18))
    repeat = journal.append_event(parse_event(_params(16)), raw=_params(16), source="other")
    assert repeat.duplicate is True
    assert repeat.seq == first.seq
    events = journal.events_after(0)
    assert [e.seq for e in events] == [first.seq, second]
    assert events[0].source == "http"
    assert isinstance(events[1].event, CallAnswered)


def test_events_after_pages_in_order(journal: Journal) -> None:
    seqs = [_append(journal, _params(16, call_id=f"{i:08X}")) for i in range(1, 12)]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert all(isinstance(s, int) and s > 0 for s in seqs)
    assert [e.seq for e in journal.events_after(seqs[3], limit=4)] == seqs[4:8]
    assert [e.seq for e in journal.events_after(0, limit=2)] == seqs[:2]
    assert journal.events_after(seqs[-1]) == []
    assert journal.last_seq() == seqs[-1]


def test_submit_event_futures_resolve_once_durable(backend: Backend) -> None:
    journal = backend.open()
    params = _params(16, call_id="000000AA")
    futures = [journal.submit_event(parse_event(params), raw=params) for _ in range(3)]
    others = [
        journal.submit_event(parse_event(p), raw=p)
        for p in (_params(16, call_id=f"{i:08X}") for i in range(20))
    ]
    results = [f.result(timeout=30) for f in futures]
    assert [r.duplicate for r in results] == [False, True, True]
    assert len({r.seq for r in results}) == 1
    seqs = {f.result(timeout=30).seq for f in others} | {results[0].seq}
    journal.close()
    assert {e.seq for e in backend.open().events_after(0)} == seqs


def test_cursor_defaults_to_zero_and_persists(backend: Backend) -> None:
    journal = backend.open()
    assert journal.get_cursor("dispatcher") == 0
    journal.set_cursor("dispatcher", 42)
    journal.set_cursor("dispatcher", 43)
    journal.close()
    again = backend.open()
    assert again.get_cursor("dispatcher") == 43
    assert again.get_cursor("other") == 0


def test_concurrent_appends_from_many_threads_are_all_kept(backend: Backend) -> None:
    journal = backend.open()
    threads, per_thread = 16, 40
    results: list[int] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(per_thread):
            seq = _append(journal, _params(16, call_id=f"{t:04X}{i:04X}"))
            with lock:
                results.append(seq)

    _in_threads(threads, worker)
    assert len(set(results)) == threads * per_thread
    journal.close()
    again = backend.open()
    stored = again.events_after(0, limit=10_000)
    assert sorted(e.seq for e in stored) == sorted(results)


def test_racing_repeats_of_one_event_are_stored_once(journal: Journal) -> None:
    params = _params(16, call_id="0000BEEF")
    seqs: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def worker(_: int) -> None:
        result = journal.append_event(parse_event(params), raw=params)
        with lock:
            seqs.append((result.seq, result.duplicate))

    _in_threads(12, worker)
    assert len({seq for seq, _ in seqs}) == 1
    assert sorted(dup for _, dup in seqs) == [False] + [True] * 11
    assert len(journal.events_after(0)) == 1


# -- rejected requests ------------------------------------------------------------------------
def test_rejected_requests_newest_first(journal: Journal) -> None:
    a = journal.record_rejected(raw="ssn_event=x", reason="ssn_event: expected an integer")
    b = journal.record_rejected(raw="", reason="missing token", remote="10.0.0.9", source="http")
    listed = journal.list_rejected()
    assert [r.id for r in listed] == [b, a]
    assert listed[0].remote == "10.0.0.9"
    assert listed[0].raw == ""
    assert listed[1].remote is None
    assert listed[1].reason.startswith("ssn_event")
    assert listed[1].raw == "ssn_event=x"
    assert abs(listed[0].received_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert [r.id for r in journal.list_rejected(limit=1)] == [b]


# -- calls ------------------------------------------------------------------------------------
def _call(key: str = "1:00000001", **changes: object) -> Call:
    base: dict[str, object] = {
        "key": key,
        "company_id": "1",
        "user_call_id": key.split(":")[-1],
        "direction": Direction.INBOUND,
        "state": CallState.RINGING,
        "extension": "201",
        "remote_number": "0612345678",
        "remote_e164": "+39612345678",
        "ring_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    }
    base.update(changes)
    return Call.model_validate(base)


def test_calls_save_get_list_and_settle(backend: Backend) -> None:
    journal = backend.open()
    assert journal.last_seq() == 0
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    journal.save_call(_call("1:A", ring_at=t0))
    journal.save_call(_call("1:B", ring_at=t0 + timedelta(minutes=1)))
    journal.save_call(_call("1:A", ring_at=t0, state=CallState.ANSWERED, answer_at=t0))
    got = journal.get_call("1:A")
    assert got is not None
    assert got.state is CallState.ANSWERED
    assert got == _call("1:A", ring_at=t0, state=CallState.ANSWERED, answer_at=t0)
    assert journal.get_call("1:nope") is None
    assert [c.key for c in journal.list_calls()] == ["1:B", "1:A"]
    assert [c.key for c in journal.list_calls(limit=1)] == ["1:B"]

    journal.save_call(_call("1:B", state=CallState.ENDED), settled=True)
    assert [c.key for c in journal.list_calls(open_only=True)] == ["1:A"]
    # A settled call stays settled even when saved again without the flag.
    journal.save_call(_call("1:B", state=CallState.ENDED))
    assert journal.is_settled("1:B")
    assert not journal.is_settled("1:A")
    assert not journal.is_settled("1:nope")
    assert [c.key for c in journal.list_calls(open_only=True)] == ["1:A"]
    journal.close()
    again = backend.open()
    assert [c.key for c in again.list_calls(open_only=True)] == ["1:A"]
    assert [c.key for c in again.list_calls()] == ["1:B", "1:A"]


# -- wrap-ups --------------------------------------------------------------------------------
def _wrapup(revision: int, notes: str = "called back", key: str = "1:W") -> WrapUp:
    return WrapUp(
        call_key=key,
        revision=revision,
        notes=notes,
        outcome="interested",
        record=CrmContext(connector="directory", record_type="Contact", record_id="3"),
        extension="201",
        saved_at=datetime(2024, 5, 1, 12, revision, tzinfo=UTC),
    )


def test_wrapups_keep_the_latest_revision_and_refuse_stale_ones(backend: Backend) -> None:
    journal = backend.open()
    assert journal.get_wrapup("1:W") is None
    with pytest.raises(WrapUpConflictError, match="revision 2 given") as refused:
        journal.save_wrapup(_wrapup(2))
    assert refused.value.current == 0
    assert journal.save_wrapup(_wrapup(1)) == _wrapup(1)
    # The same save again (a retried request) is no new revision and no error.
    assert journal.save_wrapup(_wrapup(1, notes="called back")) == _wrapup(1)
    # The same revision with other content: someone saved from a stale form.
    with pytest.raises(WrapUpConflictError) as stale:
        journal.save_wrapup(_wrapup(1, notes="something else"))
    assert stale.value.current == 1
    assert journal.save_wrapup(_wrapup(2, notes="wrong number")).revision == 2
    assert journal.get_wrapup("1:W") == _wrapup(2, notes="wrong number")
    assert journal.get_wrapup("1:other") is None
    journal.close()
    again = backend.open()
    assert again.get_wrapup("1:W") == _wrapup(2, notes="wrong number")


def test_reschedule_moves_a_pending_delivery_without_an_attempt(journal: Journal) -> None:
    created = journal.enqueue_delivery(call_key="1:S", plugin="p", action="log_call", payload={})
    later = datetime.now(UTC) + timedelta(hours=1)
    assert journal.reschedule_delivery(created.id, later)
    now = datetime.now(UTC)
    assert journal.due_deliveries(now, plugin="p") == []
    moved = journal.get_delivery(created.id)
    assert moved is not None
    assert moved.attempts == 0
    assert moved.next_attempt_at is not None
    assert abs((moved.next_attempt_at - later).total_seconds()) < 0.001
    assert journal.reschedule_delivery(created.id, now)
    assert [d.id for d in journal.due_deliveries(now + timedelta(seconds=1), plugin="p")] == [
        created.id
    ]
    journal.complete_delivery(created.id, None)
    assert not journal.reschedule_delivery(created.id, later)
    assert journal.get_delivery(created.id).state is DeliveryState.DONE  # type: ignore[union-attr]


def test_racing_saves_of_one_revision_make_one(journal: Journal) -> None:
    won: list[int] = []

    def worker(i: int) -> None:
        try:
            journal.save_wrapup(_wrapup(1, notes=f"agent {i}", key="1:R"))
        except WrapUpConflictError:
            return
        won.append(i)

    _in_threads(8, worker)
    assert len(won) == 1
    stored = journal.get_wrapup("1:R")
    assert stored is not None
    assert stored.notes == f"agent {won[0]}"


# -- originates -------------------------------------------------------------------------------
def test_originates(journal: Journal) -> None:
    origin = Originate(
        external_id="cb-1",
        user="auth-mario@example",
        extension="201",
        number="+39612345678",
        crm=CrmContext(connector="directory", record_type="Contact", record_id="7"),
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
    )
    journal.create_originate(origin)
    with pytest.raises(DuplicateOriginateError, match="cb-1"):
        journal.create_originate(origin.model_copy(update={"number": "+390000"}))
    assert journal.get_originate("cb-1") == origin
    updated = journal.update_originate("cb-1", state="ringing", user_call_id="00000042")
    assert updated is not None
    assert updated.state == "ringing"
    assert journal.get_originate("cb-1") == updated
    assert journal.update_originate("nope", state="x") is None
    with pytest.raises(ValueError, match="no_such_field"):
        journal.update_originate("cb-1", no_such_field=1)
    assert journal.get_originate("cb-1") == updated
    assert journal.get_originate("cb-2") is None


def test_concurrent_originate_updates_are_not_lost(journal: Journal) -> None:
    origin = Originate(external_id="cb-9", user="u", number="1", created_at=datetime.now(UTC))
    journal.create_originate(origin)

    def worker(i: int) -> None:
        if i % 2:
            journal.update_originate("cb-9", state="ringing")
        else:
            journal.update_originate("cb-9", user_call_id="00000007")

    _in_threads(8, worker)
    final = journal.get_originate("cb-9")
    assert final is not None
    assert (final.state, final.user_call_id) == ("ringing", "00000007")


def test_originate_update_only_if_and_recent(journal: Journal) -> None:
    """The expiry's conditional write, and the window query click-to-call matching uses."""
    now = datetime.now(UTC)
    for index, age in enumerate([600, 90, 30, 5]):
        journal.create_originate(
            Originate(
                external_id=f"cb-r{index}",
                user="u",
                number="1",
                created_at=now - timedelta(seconds=age),
            )
        )
    recent = journal.recent_originates(now - timedelta(seconds=60))
    assert [o.external_id for o in recent] == ["cb-r2", "cb-r3"]
    assert [o.external_id for o in journal.recent_originates(now - timedelta(hours=1))] == [
        "cb-r0",
        "cb-r1",
        "cb-r2",
        "cb-r3",
    ]
    journal.update_originate("cb-r2", state="ringing")
    kept = journal.update_originate("cb-r2", only_if={"requested", "sent"}, state="unmatched")
    assert kept is not None and kept.state == "ringing"
    moved = journal.update_originate("cb-r3", only_if={"requested", "sent"}, state="unmatched")
    assert moved is not None and moved.state == "unmatched"
    assert journal.get_originate("cb-r3") == moved


# -- deliveries -------------------------------------------------------------------------------
def test_delivery_state_machine(journal: Journal) -> None:
    d = journal.enqueue_delivery(call_key="1:A", plugin="crm", action="log_call", payload={"x": 1})
    assert d.state is DeliveryState.PENDING
    assert d.attempts == 0
    assert d.last_error is None and d.result is None and d.retried_at is None
    same = journal.enqueue_delivery(
        call_key="1:A", plugin="crm", action="log_call", payload={"x": 2}
    )
    assert same.id == d.id
    assert same.payload == {"x": 1}
    other = journal.enqueue_delivery(call_key="1:A", plugin="b", action="log_call", payload={})

    now = datetime.now(UTC) + timedelta(seconds=1)
    assert {x.id for x in journal.due_deliveries(now)} == {d.id, other.id}
    assert journal.due_deliveries(datetime.now(UTC) - timedelta(hours=1)) == []

    later = now + timedelta(minutes=5)
    journal.fail_delivery(d.id, error="RetryLater: busy", next_attempt_at=later)
    failed = journal.get_delivery(d.id)
    assert failed is not None
    assert failed.attempts == 1
    assert failed.last_error == "RetryLater: busy"
    assert failed.next_attempt_at == later
    assert [x.id for x in journal.due_deliveries(now)] == [other.id]
    assert {x.id for x in journal.due_deliveries(later)} == {d.id, other.id}
    assert [x.id for x in journal.due_deliveries(later, plugin="b")] == [other.id]
    assert [x.id for x in journal.due_deliveries(later, plugin="crm")] == [d.id]
    assert journal.due_deliveries(later, plugin="nobody") == []

    journal.complete_delivery(d.id, {"record_id": "T1"})
    done = journal.get_delivery(d.id)
    assert done is not None
    assert done.state is DeliveryState.DONE
    assert done.result == {"record_id": "T1"}
    assert done.attempts == 2
    assert done.next_attempt_at is None
    # Completing or failing a done delivery changes nothing.
    journal.complete_delivery(d.id, {"record_id": "T2"})
    journal.fail_delivery(d.id, error="late", next_attempt_at=None)
    assert journal.get_delivery(d.id) == done

    journal.fail_delivery(other.id, error="PermanentError: bad", next_attempt_at=None)
    dead = journal.list_deliveries(state=DeliveryState.DEAD)
    assert [x.id for x in dead] == [other.id]
    assert dead[0].next_attempt_at is None
    assert journal.due_deliveries(later) == []
    assert journal.retry_delivery(other.id) is True
    assert journal.retry_delivery(other.id) is False
    assert journal.retry_delivery(d.id) is False
    assert journal.retry_delivery(999_999) is False
    revived = journal.get_delivery(other.id)
    assert revived is not None
    assert revived.state is DeliveryState.PENDING
    assert revived.attempts == 0
    assert revived.retried_at is not None
    assert revived.last_error == "PermanentError: bad"
    assert [x.id for x in journal.due_deliveries(later)] == [other.id]
    assert [x.id for x in journal.list_deliveries(call_keys=["1:A"])] == [other.id, d.id]
    assert journal.list_deliveries(call_keys=[]) == []
    assert journal.list_deliveries(call_keys=["1:none"]) == []
    assert journal.get_delivery(999_999) is None
    complete_none = journal.enqueue_delivery(
        call_key="1:B", plugin="crm", action="log_call", payload={}
    )
    journal.complete_delivery(complete_none.id, None)
    got = journal.get_delivery(complete_none.id)
    assert got is not None and got.state is DeliveryState.DONE and got.result is None


def test_deliveries_listing_filters_and_counts(backend: Backend) -> None:
    journal = backend.open()
    ids = []
    for i in range(6):
        plugin = "a" if i % 2 else "b"
        ids.append(
            journal.enqueue_delivery(
                call_key=f"1:{i}", plugin=plugin, action="log_call", payload={"i": i}
            ).id
        )
    journal.complete_delivery(ids[0], {"ok": True})
    journal.fail_delivery(ids[1], error="bad", next_attempt_at=None)
    journal.fail_delivery(ids[2], error="bad", next_attempt_at=None)
    assert [d.id for d in journal.list_deliveries()] == ids[::-1]
    assert [d.id for d in journal.list_deliveries(limit=2)] == ids[:-3:-1]
    assert [d.id for d in journal.list_deliveries(state=DeliveryState.DEAD)] == [ids[2], ids[1]]
    assert [d.id for d in journal.list_deliveries(state=DeliveryState.PENDING, limit=2)] == [
        ids[5],
        ids[4],
    ]
    picked = journal.list_deliveries(call_keys=["1:0", "1:2", "1:5"], state=DeliveryState.DEAD)
    assert [d.id for d in picked] == [ids[2]]
    expected = [
        ("a", "dead", 1),
        ("a", "pending", 2),
        ("b", "dead", 1),
        ("b", "done", 1),
        ("b", "pending", 1),
    ]
    assert journal.delivery_counts() == expected
    journal.retry_delivery(ids[1])
    journal.close()
    again = backend.open()
    assert again.delivery_counts() == [
        ("a", "pending", 3),
        ("b", "dead", 1),
        ("b", "done", 1),
        ("b", "pending", 1),
    ]


def test_a_plugins_backlog_does_not_hide_another_plugins_due_work(journal: Journal) -> None:
    for i in range(30):
        journal.enqueue_delivery(call_key=f"1:{i}", plugin="slow", action="log_call", payload={})
    quick = journal.enqueue_delivery(call_key="1:0", plugin="quick", action="log_call", payload={})
    now = datetime.now(UTC) + timedelta(seconds=1)
    first = journal.due_deliveries(now, limit=10)
    assert len(first) == 10
    assert [d.id for d in first] == sorted(d.id for d in first)
    assert [d.id for d in journal.due_deliveries(now, limit=10, plugin="quick")] == [quick.id]


def test_due_deliveries_come_oldest_due_first(journal: Journal) -> None:
    base = datetime.now(UTC) - timedelta(minutes=10)
    a = journal.enqueue_delivery(call_key="1:a", plugin="p", action="log_call", payload={})
    b = journal.enqueue_delivery(call_key="1:b", plugin="p", action="log_call", payload={})
    c = journal.enqueue_delivery(call_key="1:c", plugin="p", action="log_call", payload={})
    journal.fail_delivery(a.id, error="x", next_attempt_at=base + timedelta(minutes=3))
    journal.fail_delivery(b.id, error="x", next_attempt_at=base + timedelta(minutes=1))
    journal.fail_delivery(c.id, error="x", next_attempt_at=base + timedelta(minutes=1))
    due = journal.due_deliveries(base + timedelta(minutes=5))
    assert [d.id for d in due] == [b.id, c.id, a.id]


def test_racing_enqueues_of_one_delivery_make_one(journal: Journal) -> None:
    got: list[int] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        d = journal.enqueue_delivery(
            call_key="1:R", plugin="crm", action="log_call", payload={"i": i}
        )
        with lock:
            got.append(d.id)

    _in_threads(12, worker)
    assert len(set(got)) == 1
    assert len(journal.list_deliveries(call_keys=["1:R"])) == 1
    assert journal.delivery_counts() == [("crm", "pending", 1)]


# -- agent event stream -----------------------------------------------------------------------
def test_agent_events_replay(backend: Backend) -> None:
    journal = backend.open()
    a = journal.append_agent_event("201", "pop", {"state": "ringing"})
    b = journal.append_agent_event("202", "pop", {"state": "ringing"})
    c = journal.append_agent_event("201", "call", {"state": "answered", "n": [1, 2]})
    assert a.id < b.id < c.id
    journal.close()
    again = backend.open()
    replay = again.agent_events_after("201", 0)
    assert [(e.id, e.extension, e.kind, e.data) for e in replay] == [
        (a.id, "201", "pop", {"state": "ringing"}),
        (c.id, "201", "call", {"state": "answered", "n": [1, 2]}),
    ]
    assert replay[0].at == a.at
    assert [e.id for e in again.agent_events_after("201", a.id)] == [c.id]
    assert [e.id for e in again.agent_events_after("201", 0, limit=1)] == [a.id]
    assert again.agent_events_after("999", 0) == []
    assert again.append_agent_event("202", "pop", {}).id > c.id


# -- life cycle -------------------------------------------------------------------------------
def test_writable_check_and_closed_journal_refuses_writes(backend: Backend) -> None:
    journal = backend.open()
    journal.check_writable()
    journal.close()
    journal.close()  # idempotent
    with pytest.raises(JournalClosedError):
        journal.set_cursor("x", 1)
    with pytest.raises(JournalClosedError):
        journal.submit_event(parse_event(_params(16)), raw=_params(16))


# -- recordings -------------------------------------------------------------------------------
def test_a_recording_reference_is_kept_per_call_and_says_when_it_changed(
    backend: Backend,
) -> None:
    journal = backend.open()
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert journal.get_recording("1:R") is None
    assert journal.save_recording("1:R", "0000002A", at) is True
    assert journal.save_recording("1:R", "0000002A", at) is False  # a repeat changes nothing
    assert journal.save_recording("1:R", "rec/2024/0000002A.wav", at) is True
    assert journal.get_recording("1:other") is None
    journal.close()
    again = backend.open()
    assert again.get_recording("1:R") == "rec/2024/0000002A.wav"


# -- retention --------------------------------------------------------------------------------
def test_prune_removes_old_wrapups_but_not_one_a_pending_delivery_needs(journal: Journal) -> None:
    """Wrap-ups go with their age, like calls: kept while a delivery of the call is pending
    (an ``update_call`` or a waiting ``log_call`` still reads it) and while younger."""
    old = datetime(2024, 5, 1, 12, tzinfo=UTC)
    for key in ("1:old", "1:busy", "1:young"):
        saved = datetime.now(UTC) if key == "1:young" else old
        journal.save_wrapup(
            WrapUp(call_key=key, revision=1, notes=key, extension="201", saved_at=saved)
        )
    journal.enqueue_delivery(call_key="1:busy", plugin="p", action="update_call:1", payload={})
    cutoff = datetime.now(UTC) - timedelta(days=1)
    assert journal.prune(cutoff, dry_run=True)["wrapups"] == 1
    assert journal.get_wrapup("1:old") is not None
    assert journal.prune(cutoff)["wrapups"] == 1
    assert journal.get_wrapup("1:old") is None
    assert journal.get_wrapup("1:busy") is not None
    assert journal.get_wrapup("1:young") is not None
    assert journal.prune(cutoff)["wrapups"] == 0


def test_prune_removes_old_recordings_like_wrapups(journal: Journal) -> None:
    old = datetime(2024, 5, 1, 12, tzinfo=UTC)
    journal.save_recording("1:old", "a", old)
    journal.save_recording("1:busy", "b", old)
    journal.save_recording("1:young", "c", datetime.now(UTC))
    journal.enqueue_delivery(call_key="1:busy", plugin="p", action="log_call", payload={})
    cutoff = datetime.now(UTC) - timedelta(days=1)
    assert journal.prune(cutoff, dry_run=True)["recordings"] == 1
    assert journal.prune(cutoff)["recordings"] == 1
    assert [journal.get_recording(k) for k in ("1:old", "1:busy", "1:young")] == [None, "b", "c"]
