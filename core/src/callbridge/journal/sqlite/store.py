"""What every part of the SQLite journal shares: its two files."""

from __future__ import annotations

from pathlib import Path

from ..base import Journal
from ..sqlite_file import SqliteFile

#: The company of a row about a call: the one given (first parameter), else the call's
#: (second parameter: the call's key), else ``default``.
CALL_COMPANY_SQL = "COALESCE(?, (SELECT company FROM calls WHERE key = ?), 'default')"


class SqliteStore(Journal):
    """The two files the parts of ``SqliteJournal`` read and write (see ``sqlite/__init__``)."""

    #: The events file (accepted events, rejected requests): the HTTP service writes it.
    _events: SqliteFile
    #: The state file (calls, deliveries, cursors, originates, agent stream): the engine's.
    _state: SqliteFile
    path: Path
    state_path: Path
