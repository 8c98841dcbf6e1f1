"""One damaged event in the journal never stops the dispatcher: the events after it are
handled, and the damaged one reaches the ``pbx_event`` hooks as an unknown event (code 0)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine_helpers import Crm, PopRecorder, incoming, local_hangup, make_engine

from callbridge.engine.dispatcher import CURSOR_NAME
from callbridge.journal.sqlite import SqliteJournal
from callbridge.voispeed.events import parse_event


def test_events_after_a_damaged_one_are_dispatched(tmp_path: Path) -> None:
    crm = Crm()
    recorder = PopRecorder()
    engine = make_engine(tmp_path, crm, recorder)
    journal = engine.journal
    assert isinstance(journal, SqliteJournal)
    seqs = [
        journal.append_event(parse_event(p), raw=p).seq
        for p in (incoming("00000001"), incoming("00000002"), local_hangup("00000002"))
    ]
    with sqlite3.connect(journal.path) as conn:  # neither stored form makes an event any more
        conn.execute(
            "UPDATE events SET raw = '{\"ssn_event\":\"16\"}', parsed = 'garbage' WHERE seq = ?",
            (seqs[0],),
        )
    try:
        engine.start()
        assert engine.wait_idle(30)
        assert list(crm.by_call) == ["callbridge:1:00000002:crm"]
        assert journal.get_cursor(CURSOR_NAME) == seqs[-1]
        assert 0 in recorder.events  # the damaged event, handed on as unknown
    finally:
        engine.stop()
        journal.close()
