"""One SQLite file of the journal: its writer thread, group commit, checkpoints and readers.

The SQLite journal is two of these (see ``sqlite/__init__.py`` for why two). Each file has:

- one write connection, owned by one writer thread. Every write is a small function put on a
  queue with a future; the writer takes everything queued, runs it all in one transaction
  (each write in its own savepoint, so one failing write does not undo the others), commits
  once, and then resolves every future. Under load, hundreds of writes share one fsync;
  alone, a write costs one.
- ``synchronous=FULL`` for batches holding a *durable* write (the commit returns once the WAL
  is fsynced), ``NORMAL`` for the rest (see ``_Write``).
- a read connection per thread: WAL lets readers see the last commit while the writer
  writes, and a write's future resolves after its commit, so a thread reads its own writes.
- checkpoints run beside the writer, in the processes that write the file, and keep the WAL
  from growing without end (``_checkpoint_loop``).
- other processes may write to the same file (the engine beside the HTTP service, or
  ``callbridge deliveries retry``); ``_begin`` waits for their short transactions.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from .base import JournalClosedError
from .batching import leftovers, take_batch

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Most writes run in one transaction; bounds the latency of the last one in a burst.
_MAX_BATCH = 2000
#: Milliseconds a connection waits for another process's write lock before failing.
_BUSY_TIMEOUT_MS = 30_000
#: Seconds the writer pauses after a non-durable batch when lingering (see ``_write_loop``).
_LINGER = 0.001
#: Seconds between WAL checkpoints (see ``SqliteFile._checkpoint_loop``): short, so that
#: each one has little to flush.
_CHECKPOINT_INTERVAL = 0.1
#: WAL frames (pages) beyond which the writer finishes a checkpoint so the WAL can restart.
_WAL_RESTART_FRAMES = 1000
#: Bytes the WAL file is cut back to when it restarts.
_WAL_SIZE_LIMIT = 16 * 1024 * 1024


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the journal's settings: autocommit, busy timeout, foreign keys."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_MS / 1000
    )
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _begin(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE`` on a connection without busy handler, waiting in short steps.

    SQLite's own busy handler sleeps in steps of up to 100 ms, so waiting for another
    process's commit (well under a millisecond) could turn a 1 ms write into a hundred. We
    poll every 0.1-0.5 ms instead, for up to the busy timeout.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    delay = 0.0001
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.0005)


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL mode, retrying while another process does the same.

    Two processes opening a new journal at once (``serve --engine none`` beside
    ``callbridge engine``) both ask; SQLite answers "locked" to the loser at once, without
    its busy handler.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"could not switch the journal to WAL mode ({mode})")
        return


class _Write:
    """One queued write: a function of the write connection, and where its result goes.

    ``atomic`` writes make at most one change (one statement, or reads and then one
    statement): a failing statement undoes only itself, so they need no savepoint.

    ``durable`` writes (accepted events, rejected requests, originates) must be on disk before
    anyone is told so: their batch commits with ``synchronous=FULL`` (an fsync). The rest is
    state the engine derives from durable events and re-derives after a power loss (its
    cursor is in the same lost suffix of the WAL), so it commits with ``NORMAL``.
    A process crash loses neither: both reach the operating system before the future resolves.
    """

    __slots__ = ("atomic", "durable", "fn", "future")

    def __init__(
        self, fn: Callable[[sqlite3.Connection], Any], *, atomic: bool, durable: bool
    ) -> None:
        self.fn = fn
        self.atomic = atomic
        self.durable = durable
        self.future: Future[Any] = Future()


class SqliteFile:
    """One SQLite file in WAL mode with a single writer thread. Thread-safe."""

    def __init__(
        self,
        path: Path,
        *,
        migrate: Callable[[sqlite3.Connection], object],
        linger: bool = False,
    ) -> None:
        """Open (and ``migrate``) the file at ``path``, then start its writer and checkpoints.

        ``linger``: the writer leaves the file's write lock free for a moment after each batch
        of non-durable writes. SQLite's locks are not fair, and a process committing
        background work back to back would starve another process writing the same file.
        The pause also lets more background writes share the next commit.
        """
        self.path = path
        self._linger = _LINGER if linger else 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_conn = connect(self.path)
        try:
            _enable_wal(self._write_conn)
            migrate(self._write_conn)
        except BaseException:
            self._write_conn.close()
            raise
        # Checkpoints copy the WAL into the database file and fsync it: tens of milliseconds
        # that an automatic checkpoint would spend inside some commit, with writes waiting on
        # it. A thread of our own runs them instead (see ``_checkpoint_loop``).
        self._write_conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._write_conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
        # ``_begin`` does the waiting for other processes; once it holds the write lock
        # nothing in a transaction waits for one, so no busy handler (and no PRAGMA to
        # switch it off and on again around every batch).
        self._write_conn.execute("PRAGMA busy_timeout = 0")
        self._synchronous = "FULL"
        self._stop_checkpoints = threading.Event()
        self._finish_checkpoint = threading.Event()
        #: Set by the writer after each commit, cleared by the checkpoint thread.
        self._wrote = False
        #: Checkpoints this process ran (for tests and curiosity).
        self.checkpoints = 0
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._writer_error: BaseException | None = None
        self._writer = threading.Thread(
            target=self._write_loop, name=f"journal-writer:{path.name}", daemon=True
        )
        self._writer.start()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name=f"journal-checkpoint:{path.name}", daemon=True
        )
        self._checkpointer.start()

    def __repr__(self) -> str:
        return f"SqliteFile({str(self.path)!r})"

    # -- reads ----------------------------------------------------------------------------
    def read(self) -> sqlite3.Connection:
        """This thread's read connection (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise JournalClosedError("the journal is closed")
            conn = connect(self.path)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    # -- writes ---------------------------------------------------------------------------
    def enqueue(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        atomic: bool = False,
        durable: bool = False,
    ) -> Future[T]:
        """Queue ``fn`` for the writer's next transaction; the future resolves after commit."""
        if self._closed or self._writer_error is not None:
            raise JournalClosedError("the journal is closed") from self._writer_error
        write = _Write(fn, atomic=atomic, durable=durable)
        self._queue.put(write)
        return write.future

    def submit(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        atomic: bool = False,
        durable: bool = False,
    ) -> T:
        """Run ``fn`` in the writer's next transaction and return once it is committed."""
        return self.enqueue(fn, atomic=atomic, durable=durable).result()

    def _write_loop(self) -> None:
        conn = self._write_conn
        stopping = False
        while not stopping:
            batch, stopping = take_batch(self._queue, _MAX_BATCH)
            if not batch:
                break
            try:
                self._run_batch(conn, batch)
                self._wrote = True
                if self._linger and not any(write.durable for write in batch):
                    time.sleep(self._linger)
                if self._finish_checkpoint.is_set() and self._queue.empty():
                    self._finish_checkpoint.clear()
                    self._finish(conn)
            except BaseException as exc:  # the writer must answer every waiter, then stop
                log.exception("journal writer failed")
                self._writer_error = exc
                for write in batch:
                    if not write.future.done():
                        write.future.set_exception(exc)
                break
        # Anything still queued after a stop or a failure gets a clear error, not a hang.
        for item in leftovers(self._queue):
            item.future.set_exception(JournalClosedError("the journal is closed"))

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Write]) -> None:
        results: list[tuple[_Write, Any, BaseException | None]] = []
        synchronous = "FULL" if any(write.durable for write in batch) else "NORMAL"
        if synchronous != self._synchronous:
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._synchronous = synchronous
        _begin(conn)
        try:
            for write in batch:
                if write.atomic:
                    try:
                        results.append((write, write.fn(conn), None))
                    except Exception as exc:
                        results.append((write, None, exc))
                    continue
                conn.execute("SAVEPOINT w")
                try:
                    value = write.fn(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO w")
                    conn.execute("RELEASE w")
                    results.append((write, None, exc))
                else:
                    conn.execute("RELEASE w")
                    results.append((write, value, None))
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for write in batch:
                write.future.set_exception(exc)
            if isinstance(exc, sqlite3.OperationalError):
                return  # e.g. disk full or locked too long: fail this batch, keep serving
            raise
        for write, value, error in results:
            if error is not None:
                write.future.set_exception(error)
            else:
                write.future.set_result(value)

    # -- checkpoints ----------------------------------------------------------------------
    def _finish(self, conn: sqlite3.Connection) -> None:
        """Nothing is waiting: copy the frames the checkpoint thread has not copied yet."""
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # I/O: the next round tries again; writes go on
            log.warning("checkpoint of %s failed: %s", self.path.name, exc)
        else:
            self.checkpoints += 1

    def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database often, beside the writer, not inside it.

        Only after this process wrote: the processes that write a file checkpoint it (the
        HTTP service the events file, the engine the state file, and the events file too
        when a MySQL source in the engine appends there). A process that only reads would
        add checkpoints at its own, lower, CPU priority for nothing.

        Often, because a checkpoint fsyncs what was written since the last one, and the
        files share a disk: the engine's state file takes ~30 KiB of WAL per new call (with
        ``synchronous=NORMAL`` it stays in the page cache until then). Checkpointed once a
        second at 1,000 calls/s, that was a flush of tens of MB, and the ingress's fsyncs
        queued behind it: acknowledgements stalled 15-25 ms every second (p99 8-11 ms). Every
        100 ms, each flush is small and the ack p99 stays under 5 ms (``make bench``).

        Under a steady load this alone never lets the WAL restart: SQLite only rewinds it when
        a write transaction begins with *every* frame copied, and frames keep arriving while
        the copy runs. The WAL would grow without end (about 14 KiB per event), each commit
        extending the file, whose fsync then also commits the file system's journal. So once
        the WAL is longer than ``_WAL_RESTART_FRAMES``, this thread asks the writer to copy
        the few frames written since, at its next idle moment (``_write_loop``): a short
        checkpoint, after which the next transaction rewinds the WAL.
        """
        conn = connect(self.path)
        try:
            while not self._stop_checkpoints.wait(_CHECKPOINT_INTERVAL):
                if not self._wrote:
                    continue
                self._wrote = False
                try:
                    _busy, frames, _copied = conn.execute(
                        "PRAGMA wal_checkpoint(PASSIVE)"
                    ).fetchone()
                except sqlite3.Error as exc:  # busy or I/O: the next round tries again
                    log.debug("checkpoint skipped: %s", exc)
                    continue
                self.checkpoints += 1
                if frames > _WAL_RESTART_FRAMES:
                    self._finish_checkpoint.set()
        finally:
            conn.close()

    # -- life cycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Finish queued writes, stop the threads, close every connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop_checkpoints.set()
        self._queue.put(None)
        self._writer.join()
        self._checkpointer.join()
        self._write_conn.close()
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._local = threading.local()
