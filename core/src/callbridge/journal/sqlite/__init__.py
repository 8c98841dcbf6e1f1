"""The embedded journal: two SQLite files in WAL mode, each with its own group-committing writer.

Why this shape:

- ``synchronous=FULL`` in WAL mode makes a commit durable once it returns (the WAL is
  fsynced), which is what "the PBX gets its 200 only after the event is durable" needs.
- An fsync costs time; one per ingress request would cap the rate. So each file has one
  writer thread and group commit (``sqlite_file.py``): under load, hundreds of appends share
  one fsync; alone, an append costs one.
- Two files, because two processes write: ``callbridge serve`` runs the HTTP service, which
  appends the PBX's events, and the engine beside it, which writes what it makes of them.
  SQLite has one write lock per file. In one file, every acknowledgement could wait behind
  an engine transaction (and a busy engine made those waits the tail of the ack latency), and
  neither process could keep the WAL short. So:

  - the *events* file (``journal.sqlite3``) holds accepted events and rejected requests. The
    HTTP process writes it; the engine reads it, and appends there only what it receives
    itself (a MySQL source running in the engine process, dead letters, the daily prune).
  - the *state* file (``journal-state.sqlite3``) holds calls, deliveries, cursors,
    originates and the agent stream. The engine writes it; the HTTP service writes there only
    for click-to-call.

  Nothing needs a transaction across the two: the engine's cursor (state) names the last
  event (events) it finished, and everything it derives is re-derived from events after it.
- Reads never wait for a writer: each thread has its own read connection per file.

The modules: ``journal.py`` opens the two files and pairs them; ``events.py`` (accepted
events, rejected requests, cursors), ``calls.py`` (calls, originates, the agent stream),
``deliveries.py`` and ``pruning.py`` each add one part of the ``Journal`` to it. Times,
JSON and events are stored as ``journal/codec.py`` says, the same as in Redis.
"""

from ..base import JournalClosedError
from .journal import SqliteJournal, state_path_for

__all__ = ["JournalClosedError", "SqliteJournal", "state_path_for"]
