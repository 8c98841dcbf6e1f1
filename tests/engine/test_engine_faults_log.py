"""``FaultLog``: a repeating fault is one line per interval, its traceback once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from callbridge.faults import FaultLog, file_fault


def test_one_line_per_interval_and_the_traceback_once(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    faults = FaultLog(logging.getLogger("t.faults"), interval=60, clock=lambda: now[0])
    error = OSError(28, "No space left on device")
    with caplog.at_level(logging.WARNING, logger="t.faults"):
        for second in range(0, 130):  # one failure a second for two minutes
            now[0] = float(second)
            faults.report("journal", "journal full", error)
        now[0] = 200.0
        assert faults.clear("journal", "journal back")
        assert not faults.clear("journal", "journal back")  # logged once
    lines = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert lines == [
        ("ERROR", "journal full", True),
        ("ERROR", "journal full (still failing; 59 more time(s) since the last line)", False),
        ("ERROR", "journal full (still failing; 59 more time(s) since the last line)", False),
        ("WARNING", "journal back (after 200s)", False),
    ]


def test_file_fault_names_the_path_and_the_fix() -> None:
    full = file_fault(Path("/srv/cb/journal.sqlite3"), OSError("database or disk is full"))
    assert full.startswith("journal /srv/cb/journal.sqlite3 cannot be written")
    assert "free space on the disk holding /srv/cb" in full
    denied = file_fault(Path("/srv/cb/journal.sqlite3"), PermissionError("permission denied"))
    assert "let the user running callbridge write /srv/cb" in denied


def test_one_cause_under_several_faults_is_traced_once(caplog: pytest.LogCaptureFixture) -> None:
    """A full disk fails the events and the deliveries: two lines, one traceback."""
    faults = FaultLog(logging.getLogger("t.causes"))
    full = OSError(28, "No space left on device")
    with caplog.at_level(logging.WARNING, logger="t.causes"):
        faults.report("journal", "deliveries paused", full)
        faults.report("events", "events wait", OSError(28, "No space left on device"))
        faults.report("delivery:crm", "crm down", ConnectionError("refused"))
    traced = [(r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert traced == [("deliveries paused", True), ("events wait", False), ("crm down", True)]
