"""OriginateMatcher on a real SQLite journal: which request a 17 without ext_id takes, and
which requests expire to ``unmatched``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callbridge.engine.originates import OriginateMatcher
from callbridge.journal.sqlite import SqliteJournal
from callbridge.models import Originate
from callbridge.settings import Settings
from callbridge.voispeed.events import CallEvent, parse_event

NOW = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    j = SqliteJournal(tmp_path / "journal.sqlite3")
    yield j
    j.close()


def _matcher(journal: SqliteJournal) -> OriginateMatcher:
    return OriginateMatcher(journal, Settings(pbx={"originate_window": 60}))  # type: ignore[arg-type]


def _request(
    journal: SqliteJournal, external_id: str, age: float, *, ext: str = "201", state: str = "sent"
) -> None:
    journal.create_originate(
        Originate(
            external_id=external_id,
            user="auth-mario@acme",
            extension=ext,
            number="+39 06 1234 5678",
            created_at=NOW - timedelta(seconds=age),
            state=state,
        )
    )


def _outgoing(call_id: str, number: str = "0612345678", ext: str = "201") -> CallEvent:
    event = parse_event({"ssn_event": "17", "call_id": call_id, "number": number, "ext": ext})
    assert isinstance(event, CallEvent)
    return event


def test_the_oldest_pending_request_of_the_agent_to_the_number_is_taken(
    journal: SqliteJournal,
) -> None:
    _request(journal, "cb-too-old", 90)  # outside the window
    _request(journal, "cb-first", 30)
    _request(journal, "cb-second", 10)
    _request(journal, "cb-other-agent", 40, ext="202")
    _request(journal, "cb-refused", 50, state="failed")
    matcher = _matcher(journal)
    first = matcher.correlate(_outgoing("000000A1"), NOW)
    assert first.ext_id == "cb-first"
    bound = journal.get_originate("cb-first")
    assert bound is not None and bound.user_call_id == "000000A1"
    # The same event handled again (after a crash) finds the same request.
    assert matcher.correlate(_outgoing("000000A1"), NOW).ext_id == "cb-first"
    assert matcher.correlate(_outgoing("000000A2"), NOW).ext_id == "cb-second"
    assert matcher.correlate(_outgoing("000000A3"), NOW).ext_id is None


def test_events_that_are_not_a_clicked_start_are_left_alone(journal: SqliteJournal) -> None:
    _request(journal, "cb-1", 5)
    matcher = _matcher(journal)
    assert matcher.correlate(_outgoing("000000B1", number="0699999999"), NOW).ext_id is None
    assert matcher.correlate(_outgoing("000000B2", ext="203"), NOW).ext_id is None
    incoming = parse_event(
        {"ssn_event": "16", "call_id": "000000B3", "number": "0612345678", "ext": "201"}
    )
    assert isinstance(incoming, CallEvent)
    assert matcher.correlate(incoming, NOW).ext_id is None
    own = _outgoing("000000B4").model_copy(update={"ext_id": "cb-own"})
    assert matcher.correlate(own, NOW).ext_id == "cb-own"
    request = journal.get_originate("cb-1")
    assert request is not None and request.user_call_id is None


def test_expiry_moves_only_unbound_pending_requests(journal: SqliteJournal) -> None:
    _request(journal, "cb-sent", 70)
    _request(journal, "cb-unconfirmed", 70, state="unconfirmed")
    _request(journal, "cb-fresh", 30)
    _request(journal, "cb-requested", 70, state="requested")  # may still be on its way
    _request(journal, "cb-ringing", 70, state="ringing")
    _request(journal, "cb-stale-requested", 200, state="requested")
    matcher = _matcher(journal)
    expired = {o.external_id for o in matcher.expire(NOW)}
    assert expired == {"cb-sent", "cb-unconfirmed", "cb-stale-requested"}
    for external_id in expired:
        request = journal.get_originate(external_id)
        assert request is not None and request.state == "unmatched"
        assert request.error and "within 60 s" in request.error
    # Later sweeps find the fresh one once it is due, and a "requested" one once the SOAP
    # client's own bound (20 s of retries + 10 s read timeout) has passed too.
    assert matcher.expire(NOW + timedelta(seconds=4)) == []  # at most every 5 s
    later = {o.external_id for o in matcher.expire(NOW + timedelta(seconds=40))}
    assert later == {"cb-fresh", "cb-requested"}
    # A request written late (or stamped by a slower clock) is still found by the next sweep.
    _request(journal, "cb-late", 300)
    assert [o.external_id for o in matcher.expire(NOW + timedelta(seconds=50))] == ["cb-late"]
