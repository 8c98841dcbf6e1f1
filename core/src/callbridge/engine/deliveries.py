"""The delivery scheduler: due deliveries run ``log_call`` on each plugin's own thread pool.

A thread takes due deliveries, per plugin, and runs them on that plugin's small pool: a
plugin that hangs or fails only delays its own deliveries. Each outcome is written back:
done, retried later (backoff with jitter, or the plugin's hint; see ``retry``), or dead.
An outcome the journal cannot take (a full disk) holds the delivery back with the same
backoff, in memory, and pauses every delivery until a probe write succeeds (``JournalPause``):
the attempt after it runs ``log_call`` again with the same idempotency key, which is how a
connector finds the activity it already wrote instead of writing a second one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from .. import metrics
from ..errors import PermanentError, RetryLater
from ..faults import FaultLog, journal_fault
from ..journal.base import Delivery, Journal
from ..journal.sharing import WorkShare
from ..models import ActivityRef
from ..plugins.manager import Plugins
from .backoff import Backoff
from .common import MAX_ERROR, describe
from .lookups import Lookups
from .records import record_from_payload, settle_lookup
from .retry import RetryPolicy
from .wrapups import WrapUps, is_update, with_revision

log = logging.getLogger("callbridge.engine.dispatcher.deliveries")

#: Deliveries of one plugin running at once (its own thread pool).
THREADS_PER_PLUGIN = 2
#: Waits between two probe writes while the journal cannot be written: 1 s, doubling to 30 s.
PROBE_BACKOFF = Backoff(initial=1.0, cap=30.0)


class JournalPause:
    """While the journal cannot be written, no delivery runs; a probe write ends the pause."""

    def __init__(self, journal: Journal, faults: FaultLog) -> None:
        self._journal = journal
        self._faults = faults
        self._lock = threading.Lock()
        #: Monotonic time of the next probe write while paused, and the failed probes so far.
        self._until: float | None = None
        self._probes = 0

    def down(self, exc: BaseException) -> None:
        """A write failed: pause deliveries until a probe write succeeds; log it once."""
        with self._lock:
            if self._until is None:
                self._probes = 1
                self._until = time.monotonic() + PROBE_BACKOFF.delay(1)
        self._faults.report(
            "journal",
            f"{journal_fault(self._journal, exc)}; deliveries paused, events wait in the journal",
            exc,
        )

    def up(self) -> bool:
        """Whether deliveries may run: not paused, or a probe write just succeeded."""
        with self._lock:
            until = self._until
        if until is None:
            return True
        if time.monotonic() < until:
            return False
        try:
            self._journal.check_writable()
        except Exception as exc:
            with self._lock:
                self._probes += 1
                self._until = time.monotonic() + PROBE_BACKOFF.delay(self._probes)
            self._faults.report(
                "journal", f"{journal_fault(self._journal, exc)}; deliveries still paused", exc
            )
            return False
        with self._lock:
            self._until = None
        self._faults.clear("journal", "journal writable again; deliveries resume")
        return True


class Deliveries:
    """Runs due deliveries per plugin; ``beat`` is called at each pass of its loop (health)."""

    def __init__(
        self,
        journal: Journal,
        plugins: Plugins,
        lookups: Lookups,
        policy: RetryPolicy,
        *,
        wrapups: WrapUps,
        pause: JournalPause,
        stopping: threading.Event,
        wall_clock: Callable[[], datetime],
        poll_interval: float,
        beat: Callable[[], None],
    ) -> None:
        self.journal = journal
        self.plugins = plugins
        self.lookups = lookups
        self.policy = policy
        #: The agents' wrap-ups: deliveries that wait for one, and ``update_call`` runs.
        self.wrapups = wrapups
        self.pause = pause
        self._stopping = stopping
        self._wall_clock = wall_clock
        self._poll_interval = poll_interval
        self._beat = beat
        self.wake = threading.Event()
        self.pools: dict[str, ThreadPoolExecutor] = {}
        #: Guards ``pools``: the loop adds pools while ``close`` (in another thread) shuts
        #: them down; once closed, no new pool is made.
        self._pools_lock = threading.Lock()
        self._pools_closed = False
        self._running: dict[int, str] = {}
        #: Deliveries whose outcome the journal could not take: id -> (tries, not before).
        self._held: dict[int, tuple[int, datetime]] = {}
        self._lock = threading.Lock()
        #: With several workers on one journal: a delivery runs only under a claim, and a
        #: worker looks that many times its free slots down the due list (others' claims).
        self.share: WorkShare | None = None
        self.workers: Callable[[], int] = lambda: 1

    # -- life cycle -----------------------------------------------------------------------
    def loop(self) -> None:
        """The scheduler thread: schedule what is due, then wait for a wake-up or the poll."""
        while not self._stopping.is_set():
            self._beat()
            try:
                self._schedule_due()
            except Exception as exc:
                if self._stopping.is_set():
                    return
                self.pause.down(exc)
                self._stopping.wait(1.0)
            self.wake.wait(self._poll_interval * 2)
            self.wake.clear()

    def close(self, deadline: float) -> None:
        """Shut the pools down and wait (until the monotonic ``deadline``) for running ones."""
        # The loop may outlive its join (a slow journal read): it must not add a pool while
        # we walk them, nor make one after (its deliveries would run after stop).
        with self._pools_lock:
            self._pools_closed = True
            pools = list(self.pools.values())
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        while time.monotonic() < deadline and self.busy():
            time.sleep(0.02)

    def running_ids(self) -> list[int]:
        """The deliveries running now (their claims are renewed with each heartbeat)."""
        with self._lock:
            return list(self._running)

    def busy(self) -> bool:
        """Whether a delivery is running now."""
        with self._lock:
            return bool(self._running)

    def any_due(self) -> bool:
        """Whether a delivery is due now (not counting those scheduled for later)."""
        now = self._wall_clock()
        return any(
            self.journal.due_deliveries(now, limit=1, plugin=name)
            for name in self.plugins.implementers("log_call")
        )

    # -- scheduling -----------------------------------------------------------------------
    def _pool_for(self, plugin: str) -> ThreadPoolExecutor:
        """The plugin's delivery pool; RuntimeError once ``close`` shut the pools down."""
        with self._pools_lock:
            if self._pools_closed:
                raise RuntimeError("the dispatcher is stopping")
            pool = self.pools.get(plugin)
            if pool is None:
                pool = ThreadPoolExecutor(
                    max_workers=THREADS_PER_PLUGIN, thread_name_prefix=f"deliver-{plugin}"
                )
                self.pools[plugin] = pool
            return pool

    def _schedule_due(self) -> None:
        if not self.pause.up():
            return
        now = self._wall_clock()
        for plugin in self.plugins.implementers("log_call"):
            if not self._schedule_plugin(plugin, now):
                return

    def _schedule_plugin(self, plugin: str, now: datetime) -> bool:
        """Submit the plugin's due deliveries its pool has room for; False when stopping."""
        with self._lock:
            busy = {i for i, p in self._running.items() if p == plugin}
        free = THREADS_PER_PLUGIN * 2 - len(busy)
        if free <= 0:
            return True
        # Shared: the first due ones may be running on other workers; look further.
        window = (free + len(busy)) * self.workers()
        due = self.journal.due_deliveries(now, limit=window, plugin=plugin)
        for delivery in due:
            if delivery.id in busy or free <= 0 or self._is_held(delivery.id, now):
                continue
            if self.wrapups.deferred(delivery, now):
                continue
            if self.share is not None and not self.share.claim_delivery(
                delivery.id, delivery.attempts
            ):
                continue  # another worker runs it, or it changed since it was read
            with self._lock:
                self._running[delivery.id] = plugin
            try:
                self._pool_for(plugin).submit(self._run, delivery)
            except RuntimeError:  # shutting down
                with self._lock:
                    self._running.pop(delivery.id, None)
                self._unclaim(delivery.id)
                return False
            free -= 1
        return True

    def _run(self, delivery: Delivery) -> None:
        try:
            self.run_one(delivery)
        except Exception as exc:
            self.pause.down(exc)
            self._hold(delivery)
        finally:
            with self._lock:
                self._running.pop(delivery.id, None)
            self._unclaim(delivery.id)
            self.wake.set()

    def _unclaim(self, delivery_id: int) -> None:
        """Give the delivery's claim up; left to expire when the journal cannot take it."""
        if self.share is not None:
            try:
                self.share.release_delivery(delivery_id)
            except Exception as exc:
                log.debug("delivery %d: claim left to expire: %s", delivery_id, describe(exc))

    def _hold(self, delivery: Delivery) -> None:
        """Its outcome was not recorded: back off as after a failure, in memory.

        The journal still says "due", so without this the delivery would run again at once,
        in a loop, each time writing the activity again where the connector cannot tell.
        """
        with self._lock:
            tries = self._held.get(delivery.id, (0, self._wall_clock()))[0] + 1
            wait = self.policy.delay(delivery.attempts + tries)
            self._held[delivery.id] = (tries, self._wall_clock() + timedelta(seconds=wait))
        metrics.DELIVERY_ATTEMPTS.labels(delivery.plugin, "unrecorded").inc()
        log.debug("delivery %d held back %.1fs: its outcome was not recorded", delivery.id, wait)

    def _is_held(self, delivery_id: int, now: datetime) -> bool:
        with self._lock:
            held = self._held.get(delivery_id)
        return held is not None and held[1] > now

    def _release(self, delivery_id: int) -> None:
        with self._lock:
            self._held.pop(delivery_id, None)

    # -- one attempt ----------------------------------------------------------------------
    def run_one(self, delivery: Delivery) -> None:
        """One attempt of one delivery, and its outcome written to the journal."""
        plugin = delivery.plugin
        try:
            record = record_from_payload(delivery.payload)
        except ValidationError as exc:
            self.journal.fail_delivery(
                delivery.id,
                error=f"invalid payload: {exc.error_count()} error(s)",
                next_attempt_at=None,
            )
            log.error("delivery %d (%s): invalid payload, dead", delivery.id, plugin)
            return
        hint: float | None = None
        lookups = self.lookups
        try:
            if is_update(delivery.action):
                record, result = self.wrapups.update(delivery, record)
            else:
                record = self.wrapups.attach(record)
                lookup = self.plugins.lookup_contact
                record = settle_lookup(record, plugin, lookup, lookups.cache, lookups.ttl)
                result = self.plugins.log_call(plugin, record)
        except PermanentError as exc:
            self._dead(delivery, exc)
            return
        except RetryLater as exc:
            hint = exc.retry_after
            error = describe(exc)
        except Exception as exc:
            error = describe(exc)
        else:
            metrics.DELIVERY_ATTEMPTS.labels(plugin, "done").inc()
            outcome = with_revision(_result_json(result, plugin), record)
            self.journal.complete_delivery(delivery.id, outcome)
            self._release(delivery.id)
            log.info("call %s logged by %s", delivery.call_key, plugin)
            return
        self._failed(delivery, error, hint)

    def _dead(self, delivery: Delivery, exc: PermanentError) -> None:
        """The plugin refused the delivery for good: dead at once."""
        metrics.DELIVERY_ATTEMPTS.labels(delivery.plugin, "dead").inc()
        self.journal.fail_delivery(delivery.id, error=describe(exc), next_attempt_at=None)
        log.error(
            "delivery %d of call %s to %s refused for good: %s",
            delivery.id,
            delivery.call_key,
            delivery.plugin,
            describe(exc),
        )

    def _failed(self, delivery: Delivery, error: str, hint: float | None) -> None:
        """The attempt failed: schedule the next one, or make it dead past the policy."""
        plugin = delivery.plugin
        now = self._wall_clock()
        due = self.policy.next_attempt(
            attempts_done=delivery.attempts + 1,
            since=delivery.retried_at or delivery.created_at,
            now=now,
            hint=hint,
        )
        metrics.DELIVERY_ATTEMPTS.labels(plugin, "retry" if due is not None else "dead").inc()
        self.journal.fail_delivery(delivery.id, error=error, next_attempt_at=due)
        self._release(delivery.id)
        if due is None:
            log.error(
                "delivery %d of call %s to %s is dead after %d attempt(s): %s",
                delivery.id,
                delivery.call_key,
                plugin,
                delivery.attempts + 1,
                error,
            )
            return
        log.warning(
            "delivery %d of call %s to %s failed (attempt %d), retrying in %.1fs: %s",
            delivery.id,
            delivery.call_key,
            plugin,
            delivery.attempts + 1,
            (due - now).total_seconds(),
            error,
        )


def _result_json(result: object, plugin: str) -> dict[str, Any] | None:
    """What a log_call returned, as JSON for the delivery row."""
    if result is None:
        return None
    if isinstance(result, ActivityRef):
        if not result.connector:
            result = result.model_copy(update={"connector": plugin})
        return result.model_dump(mode="json")
    if isinstance(result, dict):
        return {str(k): v for k, v in result.items()}
    return {"value": repr(result)[:MAX_ERROR]}
