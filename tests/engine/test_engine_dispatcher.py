"""The dispatcher over a real journal, the real tracker and real plugin manager."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import (
    REMOTE,
    REMOTE_E164,
    Broken,
    Crm,
    PopRecorder,
    answered,
    incoming,
    local_hangup,
    make_engine,
    outgoing,
    remote_hangup,
)

from callbridge.engine.engine import Engine
from callbridge.errors import PermanentError, RetryLater
from callbridge.journal import DeliveryState
from callbridge.journal.sqlite import SqliteJournal
from callbridge.models import CallState, Contact, CrmContext, Originate
from callbridge.testing import wait_until


@pytest.fixture
def cleanup() -> Iterator[list[Engine]]:
    engines: list[Engine] = []
    yield engines
    for engine in engines:
        engine.stop()
        engine.journal.close()


def _start(cleanup: list[Engine], tmp_path: Path, *plugins: object, **dispatch: object) -> Engine:
    engine = make_engine(tmp_path, *plugins, **dispatch)
    cleanup.append(engine)
    engine.start()
    return engine


def _deliveries(engine: Engine) -> list[tuple[str, str, DeliveryState]]:
    return sorted(
        (d.call_key, d.plugin, d.state) for d in engine.journal.list_deliveries(limit=10_000)
    )


def test_a_call_pops_twice_and_is_logged_once_per_plugin(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    crm, other, recorder = Crm("crm"), Crm("other", contacts={}), PopRecorder()
    engine = _start(cleanup, tmp_path, crm, other, recorder, Broken())
    got: list[tuple[str, str]] = []
    engine.bus.subscribe("201", lambda e: got.append((e.kind, e.data["state"])))

    engine.ingest(incoming("00000001"))
    engine.ingest(answered("00000001"))
    engine.ingest(local_hangup("00000001"))
    engine.ingest(local_hangup("00000001"))  # a repeat: journaled once, no effect
    assert engine.wait_idle(30)

    states = [p.state for p in recorder.pops]
    assert states == [CallState.RINGING, CallState.ANSWERED, CallState.ENDED]
    first = recorder.pops[0]
    assert set(first.contacts) == {"crm"}
    assert first.contacts["crm"].connector == "crm"
    assert first.contacts["crm"].name == "Mario Rossi"
    assert recorder.pops[1].contacts == first.contacts
    assert recorder.events == [16, 18, 21]
    assert got == [("pop", "ringing"), ("pop", "answered"), ("pop", "ended")]
    # Pops replay from the journal (the SSE stream's Last-Event-ID).
    replay = engine.journal.agent_events_after("201", 0)
    assert [e.data["state"] for e in replay] == ["ringing", "answered", "ended"]
    assert replay[0].data["contacts"]["crm"]["record_id"] == "C1"

    # The answer event cost no CRM request: one lookup per plugin for the whole call.
    assert crm.lookups == [REMOTE_E164]
    assert other.lookups == [REMOTE_E164]

    key = "1:00000001"
    assert _deliveries(engine) == [
        (key, "crm", DeliveryState.DONE),
        (key, "other", DeliveryState.DONE),
    ]
    assert list(crm.by_call) == [f"callbridge:{key}:crm"]
    record = crm.by_call[f"callbridge:{key}:crm"]
    assert record.contacts["crm"].record_id == "C1"
    assert record.call.state is CallState.ENDED
    assert len(other.logged) == 1
    done = engine.journal.list_deliveries(state=DeliveryState.DONE)
    assert {d.result["record_id"] for d in done if d.result} == {"T-00000001"}
    assert {d.result["connector"] for d in done if d.result} == {"crm", "other"}
    saved = engine.journal.get_call(key)
    assert saved is not None
    assert saved.state is CallState.ENDED
    assert engine.journal.list_calls(open_only=True) == []
    assert engine.journal.get_cursor("dispatcher") == engine.journal.last_seq()  # type: ignore[attr-defined]


def test_many_calls_in_parallel_each_logged_exactly_once(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    crm = Crm()
    engine = _start(cleanup, tmp_path, crm, workers=4)
    calls = [f"{i:08X}" for i in range(1, 41)]
    for call_id in calls:
        engine.ingest(incoming(call_id, ext=str(200 + int(call_id, 16) % 5)))
    for call_id in calls:
        engine.ingest(remote_hangup(call_id, ext=str(200 + int(call_id, 16) % 5)))
    assert engine.wait_idle(60)
    assert sorted(crm.by_call) == sorted(f"callbridge:1:{c}:crm" for c in calls)
    assert crm.attempts == len(calls)
    assert all(state is DeliveryState.DONE for _, _, state in _deliveries(engine))
    assert len(_deliveries(engine)) == len(calls)
    # The same number rang 40 times: one lookup, the rest from the cache.
    assert crm.lookups == [REMOTE_E164]


def test_a_slow_lookup_does_not_hold_the_pop_and_is_cached_for_the_answer(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    gate = threading.Event()
    slow = Crm("slow", {REMOTE_E164: Contact(record_id="S1", name="Slow Match")}, lookup_gate=gate)
    fast, recorder = Crm("fast"), PopRecorder()
    engine = _start(cleanup, tmp_path, slow, fast, recorder, lookup_budget=0.2)
    try:
        engine.ingest(incoming("00000002"))
        wait_until(lambda: len(recorder.pops) == 1, "the ringing pop", timeout=20.0)
        assert set(recorder.pops[0].contacts) == {"fast"}  # went out without the slow one
    finally:
        gate.set()
    # The late answer lands in the cache: the answered pop has it, with no new request.
    wait_until(
        lambda: isinstance(engine.dispatcher.cache.get(("slow", REMOTE_E164)), Contact),
        "the late answer cached",
        timeout=20.0,
    )
    engine.ingest(answered("00000002"))
    engine.ingest(local_hangup("00000002"))
    assert engine.wait_idle(30)
    assert set(recorder.pops[1].contacts) == {"slow", "fast"}
    assert recorder.pops[1].contacts["slow"].record_id == "S1"
    assert slow.lookups == [REMOTE_E164]
    assert fast.lookups == [REMOTE_E164]


def test_not_found_is_cached_and_failed_lookups_are_not(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    empty = Crm("empty", contacts={})
    engine = _start(cleanup, tmp_path, empty)
    engine.ingest(incoming("00000003"))
    engine.ingest(local_hangup("00000003"))
    engine.ingest(incoming("00000004"))
    assert engine.wait_idle(30)
    assert empty.lookups == [REMOTE_E164]


def test_a_plugins_own_lookup_ttls_are_honoured_by_the_core(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    """``lookup_negative_ttl = 0`` on the plugin: its "no match" is never cached."""
    empty = Crm("empty", contacts={})
    empty.lookup_negative_ttl = 0.0  # type: ignore[attr-defined]
    engine = _start(cleanup, tmp_path, empty)
    engine.ingest(incoming("00000003"))
    engine.ingest(local_hangup("00000003"))
    engine.ingest(incoming("00000004"))
    assert engine.wait_idle(30)
    # Not cached: the second call searches again (by default it would not: the test above).
    assert len(empty.lookups) >= 2
    assert set(empty.lookups) == {REMOTE_E164}
    assert engine.plugins.lookup_ttl("empty", False, 30.0) == 0.0
    assert engine.plugins.lookup_ttl("empty", True, 300.0) == 300.0  # not set: the core's


def test_retry_later_then_success(tmp_path: Path, cleanup: list[Engine]) -> None:
    crm = Crm(failures=[RetryLater("rate limited", retry_after=0.05), RuntimeError("boom")])
    engine = _start(cleanup, tmp_path, crm)
    engine.ingest(incoming("00000005"))
    engine.ingest(local_hangup("00000005"))
    wait_until(lambda: len(crm.logged) == 1, "the third attempt", timeout=20.0)
    assert engine.wait_idle(30)
    (delivery,) = engine.journal.list_deliveries()
    assert delivery.state is DeliveryState.DONE
    assert delivery.attempts == 3
    assert delivery.last_error == "RuntimeError: boom"
    assert crm.attempts == 3


def test_permanent_error_is_dead_at_once_and_others_still_deliver(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    bad = Crm("bad", failures=[PermanentError("field Subject is required")])
    good = Crm("good")
    engine = _start(cleanup, tmp_path, bad, good)
    engine.ingest(incoming("00000006"))
    engine.ingest(local_hangup("00000006"))
    assert engine.wait_idle(30)
    by_plugin = {d.plugin: d for d in engine.journal.list_deliveries()}
    assert by_plugin["bad"].state is DeliveryState.DEAD
    assert by_plugin["bad"].attempts == 1
    assert by_plugin["bad"].last_error == "PermanentError: field Subject is required"
    assert by_plugin["good"].state is DeliveryState.DONE
    assert bad.attempts == 1

    # Retried by hand: it goes through now that the CRM accepts it.
    assert engine.journal.retry_delivery(by_plugin["bad"].id)
    wait_until(lambda: len(bad.logged) == 1, "the manual retry", timeout=20.0)
    assert engine.wait_idle(30)
    revived = engine.journal.get_delivery(by_plugin["bad"].id)
    assert revived is not None
    assert revived.state is DeliveryState.DONE


def test_max_attempts_makes_a_delivery_dead_with_its_last_error(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    failing = Crm("failing", failures=[RuntimeError(f"outage {i}") for i in range(10)])
    good = Crm("good")
    engine = _start(cleanup, tmp_path, failing, good, max_attempts=3)
    engine.ingest(incoming("00000007"))
    engine.ingest(local_hangup("00000007"))
    wait_until(
        lambda: any(d.state is DeliveryState.DEAD for d in engine.journal.list_deliveries()),
        "the dead delivery",
        timeout=20.0,
    )
    by_plugin = {d.plugin: d for d in engine.journal.list_deliveries()}
    assert by_plugin["failing"].attempts == 3
    assert by_plugin["failing"].last_error == "RuntimeError: outage 2"
    assert by_plugin["good"].state is DeliveryState.DONE
    assert failing.attempts == 3


def test_a_hanging_plugin_does_not_block_another(tmp_path: Path, cleanup: list[Engine]) -> None:
    release = threading.Event()
    hanging, good = Crm("hanging", log_gate=release), Crm("good")
    engine = _start(cleanup, tmp_path, hanging, good)
    try:
        for i in range(1, 9):
            engine.ingest(incoming(f"{i:08X}"))
            engine.ingest(local_hangup(f"{i:08X}"))
        wait_until(lambda: len(good.logged) == 8, "the good plugin's deliveries", timeout=20.0)
        assert hanging.logged == {}
    finally:
        release.set()
    assert engine.wait_idle(30)
    assert len(hanging.logged) == 8


def test_click_to_call_moves_its_originate_and_tells_the_agent(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    crm = Crm()
    engine = _start(cleanup, tmp_path, crm)
    from datetime import UTC, datetime

    engine.journal.create_originate(
        Originate(
            external_id="CB0000000001",
            user="auth-mario@example",
            extension="201",
            number=REMOTE_E164,
            crm=CrmContext(connector="crm", record_type="Contact", record_id="C9"),
            created_at=datetime.now(UTC),
            state="sent",
        )
    )
    engine.ingest(outgoing("00000010", ext_id="CB0000000001"))
    # On an outgoing call, 18's number is the callee (remote) and ext the caller (the user).
    engine.ingest(answered("00000010", ext=REMOTE, number="201", ext_id="CB0000000001"))
    engine.ingest(local_hangup("00000010", ext_id="CB0000000001"))
    assert engine.wait_idle(30)
    origin = engine.journal.get_originate("CB0000000001")
    assert origin is not None
    assert origin.state == "ended"
    assert origin.user_call_id == "00000010"
    calls = [e for e in engine.journal.agent_events_after("201", 0) if e.kind == "call"]
    assert [e.data["state"] for e in calls] == ["ringing", "answered", "ended"]
    assert calls[0].data["crm"]["record_id"] == "C9"
    (record,) = crm.logged.values()
    assert record.call.crm_context is not None
    assert record.call.crm_context.record_id == "C9"


def test_restart_resumes_from_the_cursor_without_repeating(tmp_path: Path) -> None:
    crm = Crm()
    engine = make_engine(tmp_path, crm)
    engine.start()
    engine.ingest(incoming("00000011"))
    assert engine.wait_idle(30)
    engine.stop()
    journal = engine.journal
    assert isinstance(journal, SqliteJournal)
    cursor = journal.get_cursor("dispatcher")
    assert cursor == journal.last_seq()
    journal.close()

    # A second engine on the same file: the open call comes back, the end finishes it.
    again = make_engine(tmp_path, crm)
    again.start()
    try:
        again.ingest(local_hangup("00000011"))
        assert again.wait_idle(30)
        assert list(crm.by_call) == ["callbridge:1:00000011:crm"]
        assert crm.attempts == 1
    finally:
        again.stop()
        again.journal.close()


def test_unsettled_ended_call_is_finished_at_start(tmp_path: Path) -> None:
    """A crash between "ended" and "finished" must not lose the call's delivery."""
    crm = Crm()
    engine = make_engine(tmp_path, crm)
    engine.start()
    engine.ingest(incoming("00000012"))
    engine.ingest(local_hangup("00000012"))
    assert engine.wait_idle(30)
    engine.stop()
    call = engine.journal.get_call("1:00000012")
    assert call is not None
    engine.journal.close()
    # Simulate the crash window: the call saved as ended, its deliveries never enqueued.
    import sqlite3

    conn = sqlite3.connect(tmp_path / "journal-state.sqlite3")  # calls and deliveries live here
    conn.execute("DELETE FROM deliveries")
    conn.execute("UPDATE calls SET settled = 0")
    conn.commit()
    conn.close()

    again = make_engine(tmp_path, crm)
    again.start()
    try:
        assert again.wait_idle(30)
        (delivery,) = again.journal.list_deliveries()
        assert delivery.state is DeliveryState.DONE
        assert again.journal.list_calls(open_only=True) == []
    finally:
        again.stop()
        again.journal.close()


def test_a_fake_event_clock_in_the_past_does_not_stall_deliveries(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    from datetime import UTC, datetime

    crm = Crm(failures=[RuntimeError("once")])
    engine = make_engine(tmp_path, crm, clock=lambda: datetime(2020, 1, 1, tzinfo=UTC))
    cleanup.append(engine)
    engine.start()
    engine.ingest(incoming("00000013"))
    engine.ingest(local_hangup("00000013"))
    wait_until(lambda: len(crm.logged) == 1, "the retried delivery", timeout=20.0)
    assert engine.wait_idle(30)
