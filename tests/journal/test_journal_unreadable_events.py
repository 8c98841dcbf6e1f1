"""A stored event that cannot be rebuilt must not block the events after it.

The dispatcher reads events in order; if ``events_after`` raised on one damaged row, every
pass would fail at the same row and nothing after it would ever be handled. The row is
damaged by SQL in a real SQLite file, as a bad migration or a hand edit would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from callbridge.journal.sqlite import SqliteJournal
from callbridge.voispeed.events import CallIncoming, UnknownEvent, parse_event


def _params(ssn: int, call_id: str) -> dict[str, str]:
    return {
        "ssn_event": str(ssn),
        "call_id": call_id,
        "number": "0612345678",
        "ext": "201",
        "company_id": "1",
    }


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    j = SqliteJournal(tmp_path / "journal.sqlite3")
    yield j
    j.close()


def _damage(journal: SqliteJournal, seq: int, *, raw: str, parsed: str) -> None:
    with sqlite3.connect(journal.path) as conn:
        conn.execute("UPDATE events SET raw = ?, parsed = ? WHERE seq = ?", (raw, parsed, seq))


def _append_three(journal: SqliteJournal) -> list[int]:
    seqs = []
    for call_id in ("00000001", "00000002", "00000003"):
        params = _params(16, call_id)
        seqs.append(journal.append_event(parse_event(params), raw=params).seq)
    return seqs


def test_an_event_whose_stored_forms_both_fail_comes_back_unknown(
    journal: SqliteJournal,
) -> None:
    seqs = _append_three(journal)
    # Neither the parsed form nor the raw parameters (no call_id) make an event 16 any more.
    _damage(journal, seqs[1], raw='{"ssn_event":"16","number":"06"}', parsed='{"broken":')

    stored = journal.events_after(0)

    assert [s.seq for s in stored] == seqs
    assert isinstance(stored[0].event, CallIncoming)
    assert isinstance(stored[2].event, CallIncoming)
    bad = stored[1].event
    assert isinstance(bad, UnknownEvent)
    assert bad.ssn_event == 0
    assert bad.params == {"ssn_event": "16", "number": "06"}
    assert stored[1].raw == {"ssn_event": "16", "number": "06"}


def test_raw_parameters_that_are_not_json_do_not_stop_the_read(journal: SqliteJournal) -> None:
    seqs = _append_three(journal)
    _damage(journal, seqs[0], raw="not json at all", parsed="")

    stored = journal.events_after(0)

    assert [s.seq for s in stored] == seqs
    assert isinstance(stored[0].event, UnknownEvent)
    assert stored[0].raw == {}
    assert isinstance(stored[1].event, CallIncoming)


def test_a_parsed_form_that_no_longer_validates_is_parsed_again_from_raw(
    journal: SqliteJournal,
) -> None:
    seqs = _append_three(journal)
    _damage(journal, seqs[2], raw='{"ssn_event":"16","call_id":"00000003"}', parsed="{}")

    (stored,) = journal.events_after(seqs[1])

    assert isinstance(stored.event, CallIncoming)
    assert stored.event.call_id == "00000003"
