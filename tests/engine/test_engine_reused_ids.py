"""A user call id the PBX reuses: each call gets its own activity, end to end.

The PBX's counters restart (and the monitor tables' AUTO_INCREMENT after a MySQL restart), so
the same company, user call id, numbers and identity can come back an hour later as another
call. Neither the journal's dedup nor the tracker's tombstones nor the deliveries' uniqueness
may swallow it; repeats within seconds must still be repeats.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from engine_helpers import (
    REMOTE_E164,
    Crm,
    answered,
    incoming,
    local_hangup,
    make_engine,
    outgoing,
    remote_hangup,
)

from callbridge.engine.engine import Engine
from callbridge.engine.tracker import call_key, generation_key
from callbridge.journal import DeliveryState
from callbridge.models import CrmContext, Originate, Outcome

CALL_ID = "00000042"
BASE = call_key("1", CALL_ID)


@pytest.fixture
def cleanup() -> Iterator[list[Engine]]:
    engines: list[Engine] = []
    yield engines
    for engine in engines:
        engine.stop()
        engine.journal.close()


def _engine(cleanup: list[Engine], tmp_path: Path, crm: Crm) -> Engine:
    engine = make_engine(tmp_path, crm)
    cleanup.append(engine)
    engine.start()
    return engine


def _play(engine: Engine, start: datetime, *, answer: bool) -> None:
    """One call with CALL_ID, received from ``start`` on; each event also sent twice."""
    steps = [(0, incoming(CALL_ID))]
    if answer:
        steps.append((4, answered(CALL_ID)))
    steps.append((60, local_hangup(CALL_ID) if answer else remote_hangup(CALL_ID)))
    for seconds, params in steps:
        at = start + timedelta(seconds=seconds)
        first = engine.ingest(params, received_at=at)
        # A trigger retry two seconds later: the journal's window takes it as a repeat.
        again = engine.ingest(params, received_at=at + timedelta(seconds=2))
        assert (again.seq, again.duplicate) == (first.seq, True)


def _done(engine: Engine) -> dict[str, str]:
    return {
        d.call_key: d.plugin
        for d in engine.journal.list_deliveries(limit=1000)
        if d.state is DeliveryState.DONE
    }


def test_two_calls_with_one_id_an_hour_apart_each_get_one_delivery(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    crm = Crm()
    engine = _engine(cleanup, tmp_path, crm)
    start = datetime.now(UTC) - timedelta(hours=2)
    _play(engine, start, answer=True)
    _play(engine, start + timedelta(hours=1), answer=False)  # same id, numbers, identity
    assert engine.wait_idle(30)

    second = generation_key(BASE, start + timedelta(hours=1))
    assert sorted(d.call_key for d in engine.journal.list_deliveries(limit=1000)) == sorted(
        [BASE, second]
    )
    assert _done(engine) == {BASE: "crm", second: "crm"}
    assert crm.attempts == 2
    records = {r.call.key: r for r in crm.logged.values()}
    assert records[BASE].call.outcome is Outcome.ANSWERED
    assert records[second].call.outcome is Outcome.MISSED
    assert records[second].call.ring_at == start + timedelta(hours=1)
    assert records[BASE].idempotency_key("crm") != records[second].idempotency_key("crm")
    assert len(engine.journal.events_after(0)) == 5  # 3 + 2 events, no repeat journaled


def test_a_reused_id_after_a_restart_still_gets_its_delivery(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    """After a restart the tracker has forgotten the first call; the journal tells it."""
    crm = Crm()
    first = make_engine(tmp_path, crm)
    first.start()
    start = datetime.now(UTC) - timedelta(hours=2)
    _play(first, start, answer=True)
    assert first.wait_idle(30)
    first.stop()
    first.journal.close()

    again = _engine(cleanup, tmp_path, crm)
    # A late copy of the first call's end: a repeat within the journal's window.
    assert again.ingest(local_hangup(CALL_ID), received_at=start + timedelta(seconds=61)).duplicate
    _play(again, start + timedelta(hours=1), answer=True)
    assert again.wait_idle(30)
    second = generation_key(BASE, start + timedelta(hours=1))
    assert _done(again) == {BASE: "crm", second: "crm"}
    assert crm.attempts == 2
    saved = again.journal.get_call(BASE)
    assert saved is not None and saved.answer_at == start + timedelta(seconds=4)


def test_a_reused_id_of_a_click_to_call_points_its_originate_at_the_new_call(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    crm = Crm()
    engine = _engine(cleanup, tmp_path, crm)
    start = datetime.now(UTC) - timedelta(hours=2)
    _play(engine, start, answer=False)
    engine.journal.create_originate(
        Originate(
            external_id="CB0000000042",
            user="auth-mario@example",
            extension="201",
            number=REMOTE_E164,
            crm=CrmContext(connector="crm", record_type="Contact", record_id="C9"),
            created_at=start + timedelta(hours=1),
            state="sent",
        )
    )
    later = start + timedelta(hours=1)
    engine.ingest(outgoing(CALL_ID, ext_id="CB0000000042"), received_at=later)
    engine.ingest(
        local_hangup(CALL_ID, ext_id="CB0000000042"), received_at=later + timedelta(seconds=9)
    )
    assert engine.wait_idle(30)
    origin = engine.journal.get_originate("CB0000000042")
    assert origin is not None
    assert origin.call_key == generation_key(BASE, later)
    call = engine.journal.get_call(origin.call_key)
    assert call is not None and call.external_id == "CB0000000042"
    records = {r.call.key: r for r in crm.logged.values()}
    assert set(records) == {BASE, origin.call_key}
    assert records[origin.call_key].call.crm_context is not None
    assert records[BASE].call.crm_context is None


def test_a_reused_id_after_the_journal_is_emptied_gets_its_own_activity_key(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    """The journal (pruned after 30 days, or lost) no longer knows the first call.

    The core then gives the later call the same call key, but its idempotency key (what a
    CRM connector dedups on) carries the start, so the CRM sees two calls, not a retry.
    """
    crm = Crm()
    first_dir, second_dir = tmp_path / "before", tmp_path / "after"
    start = datetime.now(UTC) - timedelta(days=40)
    engine = _engine(cleanup, first_dir, crm)
    _play(engine, start, answer=True)
    assert engine.wait_idle(30)
    engine.stop()
    later = _engine(cleanup, second_dir, crm)  # an empty journal: nothing of the first call
    _play(later, start + timedelta(days=39), answer=False)
    assert later.wait_idle(30)
    assert _done(later) == {BASE: "crm"}  # the same call key as the first call's
    assert len(crm.logged) == 2  # but two activity keys
    first, second = sorted(crm.logged.values(), key=lambda r: r.call.ring_at or start)
    assert first.call.key == second.call.key == BASE
    assert first.idempotency_key("crm") != second.idempotency_key("crm")
    assert first.signature != second.signature
