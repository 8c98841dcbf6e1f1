"""The engine: journal + plugins + call tracker + dispatcher, started and stopped as one.

This is what ``callbridge serve``, the demo and the tests run. The HTTP service only appends
events to the journal (and may call ``notify``) and reads the agent ``bus``; everything that
talks to a CRM happens in the engine's threads.

Start-up order matters for crash safety: the tracker gets back the calls that were still open
(not settled) *before* the dispatcher resumes reading after its cursor, so the events handled
again after a crash find their calls where they left them.

Retention runs here too: once a day (``CALLBRIDGE_PRUNE_INTERVAL``) a thread of its own prunes the
journal of what is older than ``CALLBRIDGE_RETENTION_DAYS`` (see ``Journal.prune``), never
on the ingress path and never past the dispatcher's cursor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from .. import metrics
from ..companies.registry import Companies, install, load_companies
from ..context import Context
from ..journal.base import AppendResult, Journal
from ..settings import Settings
from ..voispeed.events import SECRET_PARAMETERS, parse_event
from .bus import AgentBus
from .common import utcnow
from .dispatcher import Dispatcher
from .partitions import PartitionedTracker
from .tracker import Tracker

if TYPE_CHECKING:
    from ..plugins.manager import Plugins
    from ..voispeed.client import PbxClient

#: ``problem`` before the first start: reported by ``/readyz``, not logged as a fault.
STARTING = "the engine is starting"

log = logging.getLogger(__name__)

#: Most open calls handed back to the tracker after a restart.
_RESTORE_LIMIT = 1_000_000
#: Seconds a dispatcher loop may go without a pass before ``problem`` reports it.
STALL_AFTER = 10.0
#: Seconds between two prunes of the journal, and before the first one after a start.
PRUNE_INTERVAL = 24 * 3600.0
_FIRST_PRUNE_AFTER = 60.0


class Engine:
    """Everything behind the ingress, as one object with ``start``/``stop``/``wait_idle``.

    ``clock`` is event time for the tracker (expiries, group windows); tests pass a fake one.
    Delivery schedules always use real time, since the journal stamps deliveries with it.

    The journal and the plugins are the caller's (``assembly.assemble`` makes them for
    serve, the engine process and the demo): ``stop`` does not close them.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        journal: Journal,
        plugins: Plugins,
        bus: AgentBus | None = None,
        pbx: PbxClient | None = None,
        clock: Callable[[], datetime] = utcnow,
        tick_interval: float = 1.0,
        poll_interval: float = 0.05,
        prune_interval: float | None = None,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.plugins = plugins
        self.bus = bus or AgentBus()
        self.pbx = pbx
        #: With a journal several engine workers share (Redis): this worker's handle on it,
        #: and a tracker per partition it holds (see ``ownership.py``).
        self.share = journal.work_share()
        self.tracker: Tracker | PartitionedTracker = self._new_tracker()
        if self.share is not None:
            self.tracker = PartitionedTracker(self._new_tracker, self.share.partitions)
        self._clock = clock
        self._tick_interval = tick_interval
        self._poll_interval = poll_interval
        self._dispatcher: Dispatcher | None = None
        #: Given (tests), or ``settings.prune_interval`` (a day by default).
        self._prune_interval = settings.prune_interval if prune_interval is None else prune_interval
        self._stop_pruning = threading.Event()
        self._pruner: threading.Thread | None = None
        self.context: Context | None = None
        self.running = False
        #: Whether ``start`` ran once: before it, the engine is starting, not stopped.
        self._started = False

    def __repr__(self) -> str:
        return f"Engine(running={self.running}, journal={self.journal!r})"

    def _new_tracker(self) -> Tracker:
        settings, journal = self.settings, self.journal
        return Tracker(
            settings.tracker,
            region=settings.default_region,
            originates=journal.get_originate,
            calls=journal.get_call,
        )

    @property
    def problem(self) -> str | None:
        """Why the engine is not fit to work, or None: not running, a dispatcher loop that
        made no pass for ``STALL_AFTER`` seconds, or deliveries paused because journal writes
        fail. ``/readyz`` reports it where the engine runs in the serving process
        (``serve --role engine``); a ``serve`` with the engine in a child asks the child
        for it once a second (``worker.health``)."""
        if not self._started:
            return STARTING
        if not self.running or self._dispatcher is None:
            return "the engine is not running"
        now = time.monotonic()
        for loop, beat in sorted(self._dispatcher.beats.items()):
            if now - beat > STALL_AFTER:
                return f"the dispatcher's {loop} loop made no pass for {now - beat:.0f}s"
        if self._dispatcher.faults.active("journal"):
            return "deliveries paused: journal writes fail (see the line above in the log)"
        return None

    @property
    def dispatcher(self) -> Dispatcher:
        """The running dispatcher (only after ``start``)."""
        if self._dispatcher is None:
            raise RuntimeError("the engine is not started")
        return self._dispatcher

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Open the parts, restore open calls, call ``startup`` hooks, start dispatching."""
        if self.running:
            return
        journal = self.journal
        tracker = self.tracker
        self.context = Context(
            settings=self.settings, journal=journal, pbx=self.pbx, extras={"engine": self}
        )
        self.plugins.startup(self.context)
        dispatcher = Dispatcher(
            journal,
            tracker,
            self.plugins,
            self.settings,
            share=self.share,
            bus=self.bus,
            clock=self._clock,
            tick_interval=self._tick_interval,
            poll_interval=self._poll_interval,
        )
        if self.share is None:  # shared: each partition's calls come back as it is taken
            open_calls = journal.list_calls(_RESTORE_LIMIT, open_only=True)
            recovered = dispatcher.finish_unsettled(open_calls)
            if recovered:
                log.info("finished %d call(s) a previous run left unsettled", recovered)
            tracker.restore(open_calls)
        self._dispatcher = dispatcher
        dispatcher.start()
        self.running = True
        self._started = True
        if self.settings.retention_days > 0:
            self._stop_pruning.clear()
            self._pruner = threading.Thread(target=self._prune_loop, name="prune", daemon=True)
            self._pruner.start()

    def stop(self) -> None:
        """Stop dispatching, call ``shutdown`` hooks, close what the engine opened."""
        if not self.running:
            return
        self.running = False
        self._stop_pruning.set()
        if self._pruner is not None:
            self._pruner.join(10.0)  # a prune goes in small steps: it stops at the next one
            self._pruner = None
        if self._dispatcher is not None:
            self._dispatcher.stop()
        if self.context is not None:
            self.plugins.shutdown(self.context)

    def prune(self) -> dict[str, int] | None:
        """Prune the journal of what is older than the retention; None when it keeps all.

        Errors are logged, not raised: the next prune tries again.
        """
        days = self.settings.retention_days
        if days <= 0:
            return None
        cutoff = utcnow() - timedelta(days=days)
        try:
            counts = self.journal.prune(cutoff)
        except NotImplementedError as exc:
            log.info("journal retention off: %s", exc)
            self._stop_pruning.set()
            return None
        except Exception:
            if not self._stop_pruning.is_set():
                log.exception("pruning the journal failed; trying again at the next prune")
            return None
        for kind, count in counts.items():
            if count:
                metrics.PRUNED.labels(kind).inc(count)
        log.info(
            "journal pruned of what is older than %g day(s): %s",
            days,
            ", ".join(f"{n} {kind}" for kind, n in counts.items()),
        )
        return counts

    def _prune_loop(self) -> None:
        """Prune shortly after the start, then every ``prune_interval`` seconds."""
        wait = min(_FIRST_PRUNE_AFTER, self._prune_interval)
        while not self._stop_pruning.wait(wait):
            self.prune()
            wait = self._prune_interval

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every event is handled and no delivery is due; False on timeout."""
        return self.dispatcher.wait_idle(timeout)

    def reload(self, companies: Companies | None = None) -> None:
        """Load the plugins again for the companies file as it is now (SIGHUP).

        The new instances start (``startup``) and take over at once; the old ones that are
        gone are shut down after the swap. ConfigurationError (an invalid file): nothing
        changed.
        """
        companies = install(companies if companies is not None else load_companies(self.settings))
        gone = self.plugins.reload(self.settings, companies)
        if self.running:
            self.plugins.startup(self.context)
            gone.shutdown(self.context)

    def wake(self) -> None:
        """New events were appended: wake the dispatcher now rather than at its next poll."""
        if self._dispatcher is not None:
            self._dispatcher.wake()

    def ingest(
        self, params: Mapping[str, str], *, source: str = "api", received_at: datetime | None = None
    ) -> AppendResult:
        """Parse, journal and hand on one event (for the demo, the simulator and tests).

        Raises ``EventParseError`` for bad parameters; nothing is stored then. The ingress
        token, if ``params`` carry it, is not stored (as in the HTTP ingress).
        """
        event = parse_event(params, company_param=self.settings.pbx.company_param)
        raw = {k: v for k, v in params.items() if k not in SECRET_PARAMETERS}
        result = self.journal.append_event(event, raw=raw, source=source, received_at=received_at)
        self.wake()
        return result

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
