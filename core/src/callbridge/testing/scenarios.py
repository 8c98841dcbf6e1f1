"""Whole calls played against a plugin through the real engine and a real SQLite journal.

``ScenarioRunner`` owns one ``Engine`` (real dispatcher, real tracker, a journal file in the
test's tmp folder) with the plugin under test and a recorder of pops. Each scenario method
journals the events of one call the way the ingress would, with times from a ``FakeClock``,
waits until the call is settled and its deliveries are done, and returns what happened: the
pops the plugin saw, the records ``log_call`` received and what it returned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..hookspecs import hookimpl
from ..models import ActivityRef, Call, CallRecord, CrmContext, Originate, ScreenPop
from .clock import FakeClock
from .events import EXTENSION, REMOTE, BuiltEvent, EventFactory

if TYPE_CHECKING:
    from ..engine.engine import Engine
    from ..journal.base import Delivery
    from ..plugins.manager import Plugins
    from ..settings import Settings

RECORDER_NAME = "callbridge-testing-recorder"


class PopRecorder:
    """Registered next to the plugin under test: keeps every ScreenPop, in order."""

    name = RECORDER_NAME

    def __init__(self) -> None:
        self.pops: list[ScreenPop] = []
        self._lock = threading.Lock()

    @hookimpl
    def screen_pop(self, pop: ScreenPop) -> None:
        with self._lock:
            self.pops.append(pop)

    def for_calls(self, keys: set[str]) -> list[ScreenPop]:
        """The pops of these calls, in the order they were made."""
        with self._lock:
            return [pop for pop in self.pops if pop.call.key in keys]


@dataclass
class ScenarioResult:
    """What one scenario produced."""

    name: str
    events: list[BuiltEvent]
    #: The calls as the journal holds them at the end (one per user call id).
    calls: list[Call]
    #: Every pop of these calls, in order (ringing, answered, ended).
    pops: list[ScreenPop]
    #: The deliveries of these calls, for every plugin that logs calls.
    deliveries: list[Delivery] = field(default_factory=list)

    def deliveries_of(self, plugin: str) -> list[Delivery]:
        """Deliveries of one plugin."""
        return [d for d in self.deliveries if d.plugin == plugin]

    @property
    def records(self) -> list[CallRecord]:
        """The CallRecords ``log_call`` received (one per finished call and plugin)."""
        return [CallRecord.model_validate(d.payload) for d in self.deliveries]

    @property
    def results(self) -> list[ActivityRef | None]:
        """What each ``log_call`` returned (None: nothing written, or not done yet)."""
        return [
            ActivityRef.model_validate(d.result) if d.result and "record_id" in d.result else None
            for d in self.deliveries
        ]

    @property
    def call(self) -> Call:
        """The one call logged (finished), for single-call scenarios."""
        keys = {d.call_key for d in self.deliveries}
        logged = [c for c in self.calls if c.key in keys] or self.calls
        if len(logged) != 1:
            raise AssertionError(f"{self.name}: {len(logged)} calls, not one")
        return logged[0]


class ScenarioRunner:
    """Plays calls through a real engine with the plugin(s) under test."""

    def __init__(
        self,
        plugins: Sequence[object],
        tmp_path: Path,
        *,
        clock: FakeClock | None = None,
        events: EventFactory | None = None,
        builtins: Sequence[str] = (),
        settings: Settings | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.clock = clock or FakeClock()
        self.events = events or EventFactory()
        self.recorder = PopRecorder()
        self.timeout = timeout
        self._tmp = tmp_path
        self._plugin_objects = list(plugins)
        self._builtins = tuple(builtins)
        self._settings = settings
        self._engine: Engine | None = None
        self._loaded: Plugins | None = None

    # -- the engine -----------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """Core settings: from the environment, with a tmp data dir and fast retries."""
        if self._settings is None:
            from ..settings import DispatchSettings, load_settings

            base = load_settings()
            self._settings = base.model_copy(
                update={
                    "data_dir": self._tmp,
                    "dispatch": DispatchSettings(
                        workers=2,
                        lookup_budget=10.0,
                        backoff_initial=0.01,
                        backoff_max=0.05,
                        max_attempts=base.dispatch.max_attempts,
                    ),
                }
            )
        return self._settings

    @property
    def engine(self) -> Engine:
        """The running engine (started on first use, stopped by ``close``)."""
        if self._engine is None:
            from ..engine.engine import Engine
            from ..journal.sqlite import SqliteJournal
            from .plugins import make_plugins

            loaded = make_plugins(
                *self._plugin_objects,
                self.recorder,
                builtins=self._builtins,
                settings=self.settings,
            )
            self._loaded = loaded
            journal = SqliteJournal(self._tmp / "journal.sqlite3")
            engine = Engine(
                self.settings,
                journal=journal,
                plugins=loaded,
                clock=self.clock,
                tick_interval=0.02,
                poll_interval=0.01,
            )
            engine.start()
            self._engine = engine
        return self._engine

    @property
    def plugins(self) -> Plugins:
        """The loaded plugins (to check a plugin's state or reason)."""
        self.engine  # noqa: B018 - loads the plugins on first use
        assert self._loaded is not None
        return self._loaded

    def close(self) -> None:
        """Stop the engine and close the journal."""
        if self._engine is not None:
            self._engine.stop()
            self._engine.journal.close()
            self._engine = None

    # -- playing --------------------------------------------------------------------------
    def play(
        self,
        name: str,
        steps: Sequence[tuple[float, BuiltEvent]],
        *,
        settle: float = 0.0,
    ) -> ScenarioResult:
        """Journal each event ``delay`` seconds (fake time) after the previous one.

        ``settle`` advances the clock after the last event (past the group window, say).
        Waits until every call of these events is settled and their deliveries are done.
        """
        engine = self.engine
        played: list[BuiltEvent] = []
        for delay, built in steps:
            self.clock.advance(delay)
            engine.ingest(built.params, source="test", received_at=self.clock.now())
            played.append(built)
        if settle:
            self.clock.advance(settle)
        # The tracker names each call (a reused user call id gets a key of its own), so ask it
        # once it has seen the events.
        engine.wait_idle(self.timeout)
        tracker = engine.dispatcher.tracker
        keys = {key for key in (_key_of(b, tracker.key_for) for b in played) if key is not None}
        self._wait_settled(keys)
        journal = engine.journal
        calls = [c for c in (journal.get_call(k) for k in sorted(keys)) if c is not None]
        deliveries = [d for d in journal.list_deliveries(limit=100_000) if d.call_key in keys]
        deliveries.sort(key=lambda d: d.id)
        return ScenarioResult(name, played, calls, self.recorder.for_calls(keys), deliveries)

    def _wait_settled(self, keys: set[str]) -> None:
        engine = self.engine
        deadline = time.monotonic() + self.timeout
        while True:
            engine.wait_idle(max(0.1, deadline - time.monotonic()))
            open_keys = {c.key for c in engine.journal.list_calls(100_000, open_only=True)}
            if not keys & open_keys and engine.wait_idle(max(0.1, deadline - time.monotonic())):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"calls {sorted(keys & open_keys)} not settled after {self.timeout}s "
                    "(a group call waits for the group window: pass settle=)"
                )
            time.sleep(0.02)

    # -- the standard calls ---------------------------------------------------------------
    def inbound_answered(
        self,
        *,
        remote: str = REMOTE,
        extension: str = EXTENSION,
        ring_s: float = 6,
        talk_s: float = 95,
        hangup: Literal["remote", "local"] = "remote",
        **extra: str,
    ) -> ScenarioResult:
        """A caller rings ``extension``, the user answers, someone hangs up (16, 18, 20/21)."""
        ev = self.events
        call = ev.call_id()
        return self.play(
            "inbound answered",
            [
                (0, ev.incoming(call, remote=remote, extension=extension, **extra)),
                (ring_s, ev.answered(call, remote=remote, extension=extension)),
                (talk_s, ev.hangup(call, by=hangup, remote=remote, extension=extension)),
            ],
        )

    def missed(
        self,
        *,
        remote: str = REMOTE,
        extension: str = EXTENSION,
        ring_s: float = 25,
        **extra: str,
    ) -> ScenarioResult:
        """A caller rings ``extension`` and gives up before anyone answers (16, 20)."""
        ev = self.events
        call = ev.call_id()
        return self.play(
            "inbound missed",
            [
                (0, ev.incoming(call, remote=remote, extension=extension, **extra)),
                (ring_s, ev.remote_hangup(call, remote=remote, extension=extension)),
            ],
        )

    def group(
        self,
        *,
        remote: str = REMOTE,
        members: Sequence[str] = ("201", "202", "203"),
        answered_by: str | None = "202",
        group: str = "600",
        ring_s: float = 5,
        talk_s: float = 60,
    ) -> ScenarioResult:
        """A caller dials a ring group: every member rings; ``answered_by`` answers (or nobody).

        The tracker logs only the answering member's leg, or one missed call for the group.
        """
        if answered_by is not None and answered_by not in members:
            raise ValueError(f"answered_by {answered_by!r} is not one of the members")
        ev = self.events
        legs = {member: ev.call_id() for member in members}
        steps: list[tuple[float, BuiltEvent]] = [
            (0.1, ev.incoming(legs[m], remote=remote, extension=m, group=group)) for m in members
        ]
        others = [m for m in members if m != answered_by]
        if answered_by is not None:
            leg = legs[answered_by]
            steps.append((ring_s, ev.answered(leg, remote=remote, extension=answered_by)))
            steps += [(0.1, ev.remote_hangup(legs[m], remote=remote, extension=m)) for m in others]
            steps.append((talk_s, ev.remote_hangup(leg, remote=remote, extension=answered_by)))
        else:
            steps += [
                (ring_s if i == 0 else 0.1, ev.remote_hangup(legs[m], remote=remote, extension=m))
                for i, m in enumerate(others)
            ]
        window = self.settings.tracker.group_window
        return self.play("group call", steps, settle=window + 1)

    def click_to_call(
        self,
        *,
        remote: str = REMOTE,
        extension: str = EXTENSION,
        crm: CrmContext | None = None,
        answered: bool = True,
        ring_s: float = 7,
        talk_s: float = 120,
    ) -> ScenarioResult:
        """An agent clicks a number in a CRM record: an Originate, then 17, 18, 21 with ext_id.

        The Originate is created as ``POST /v1/calls`` would (before the SOAP request), so the
        call reaches ``log_call`` with ``record.call.crm_context`` = ``crm``.
        """
        from ..voispeed.ids import new_external_id

        ev = self.events
        external_id = new_external_id()
        self.engine.journal.create_originate(
            Originate(
                external_id=external_id,
                user=f"auth-{extension}@example",
                extension=extension,
                number=remote,
                crm=crm,
                created_at=self.clock.now(),
                state="sent",
            )
        )
        call = ev.call_id()
        steps: list[tuple[float, BuiltEvent]] = [
            (1, ev.outgoing(call, remote=remote, extension=extension, ext_id=external_id))
        ]
        if answered:
            steps.append(
                (ring_s, ev.answered(call, direction="outbound", remote=remote, ext_id=external_id))
            )
            steps.append((talk_s, ev.local_hangup(call, remote=remote, ext_id=external_id)))
        else:
            steps.append((ring_s, ev.local_hangup(call, remote=remote, ext_id=external_id)))
        return self.play("click-to-call", steps)

    def __enter__(self) -> ScenarioRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _key_of(built: BuiltEvent, key_for: Callable[[str | None, str], str]) -> str | None:
    call_id = getattr(built.event, "call_id", None)
    if call_id is None:
        return None
    return key_for(built.event.company_id, call_id)
