"""The journal in Redis: events in a stream, everything else in hashes and sorted sets.

Why this shape:

- Accepted events go to one stream with explicit ids ``<seq>-0``, ``seq`` taken from an
  ``INCR`` counter, so that ``StoredEvent.seq`` stays an integer that only grows, exactly as
  with SQLite, and ``events_after`` is an ``XRANGE`` from ``seq + 1``. The dedup key, the
  counter and the stream entry are written by one Lua script: Redis runs a script atomically,
  so a repeat returns the original ``seq`` and changes nothing, even under races.
- Every write that touches several keys (a delivery's state and its indexes, a call and the
  set of open calls) is one Lua script for the same reason: readers never see half a change.
- Durability is the server's business. With ``appendonly yes`` and ``appendfsync always``
  Redis fsyncs its append-only file before it answers any client, which is the equivalent of
  SQLite's ``synchronous=FULL``; and since every command run in one turn of its event loop
  shares that fsync, concurrent appends are group-committed for free. The journal checks the
  server's settings at start-up and warns (without changing them) when they do not give that.
- ``submit_event`` hands appends to one writer thread that sends everything queued in one
  pipeline: one round trip and one fsync for a burst instead of one per request.
- Keys share a prefix (``?prefix=`` in the URL, default ``callbridge``) so that several
  instances, or tests, can use one server. Keys are built inside the scripts, so this needs a
  standalone Redis (or one shard, with replicas and Sentinel: docs/scaling.md), not Redis
  Cluster.

The URL's password is never shown: ``repr``, logs and errors use a redacted form.

The modules: ``connection.py`` (the URL, the client, the server checks and the key
names), ``scripts.py`` (every Lua script), ``events.py`` (the writer thread, accepted
events, cursors, rejected requests and the agent streams), ``calls.py`` (calls and
originates), ``deliveries.py``, ``pruning.py``, ``bells.py`` (the agents' doorbell across
processes, pub/sub), ``sentinel.py`` (``redis+sentinel://`` URLs), and ``journal.py``, which
puts them together. Times, JSON and events are stored as ``journal/codec.py`` says, as in SQLite.
"""

from ..base import DuplicateOriginateError
from .connection import DEFAULT_PREFIX, SCHEMA_VERSION, redact_url
from .events import REJECTED_KEPT
from .journal import RedisJournal

__all__ = [
    "DEFAULT_PREFIX",
    "REJECTED_KEPT",
    "SCHEMA_VERSION",
    "DuplicateOriginateError",
    "RedisJournal",
    "redact_url",
]
