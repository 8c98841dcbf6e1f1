"""The demo: callbridge and its simulated PBX in one process, scenarios played through both.

``Demo.start()`` builds everything on embedded defaults and nothing else:

1. a data directory (temporary unless given) holding the journal and the ``directory``
   plugin's SQLite file, seeded with the sample contacts the scenarios' numbers belong to;
2. the simulator (``callbridge.sim``): its SOAP endpoint on a free port, its events sent over
   real HTTP to callbridge's ingress with a generated token;
3. callbridge's HTTP service on a free port (or the one asked for), with settings built
   explicitly (``IsolatedSettings``: no ``CALLBRIDGE_*`` variable is read), the PBX client
   pointed at the simulator, and an API token for the simulated company's agents.

Scenarios are played as ``callbridge sim play`` would, with one change that shows the
product's main thread: a scenario that starts with a click-to-call (``soap_call_req``) is
placed through callbridge's own API, ``POST /v1/calls`` with the CRM record clicked from, and
the simulator waits for the CallReq that produces (``await_call_req``). Its activity must then
land on that record. Calls placed from the agent panel while the demo runs are answered by
the simulated customer after a moment and hung up a few seconds later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx

from ..assembly import Assembly
from ..assembly import assemble as assemble_parts
from ..engine.engine import Engine
from ..journal.base import AgentEvent, DeliveryState
from ..models import ActivityRef, CallRecord
from ..plugins.builtin.directory import DirectoryPlugin
from ..server.app import create_app
from ..server.ingress import PATH, SERI_PATH
from ..server.thread import ServerThread, bind_socket
from ..settings import PbxSettings, Settings
from ..sim.engine import SimCall, SimError
from ..sim.model import two_company_directory
from ..sim.playback import ScenarioPlayer
from ..sim.scenarios import Scenario, ScenarioError, Step
from ..sim.simulator import Simulator
from ..voispeed.ids import new_external_id
from .companies import (
    DemoCompany,
    demo_scenarios,
)
from .directory import DemoDirectory
from .expect import Played, activities_of, check_played, foreign_activities
from .feed import ActivityWritten, CallUpdate, DemoEvent, Note, ScenarioChecked, ScenarioStarted
from .options import DemoOptions as DemoOptions
from .options import Summary as Summary
from .settings import demo_settings, new_token
from .tenants import DemoTenants, rounds, wait_until

log = logging.getLogger(__name__)

Listener = Callable[[DemoEvent], None]


class Demo(DemoTenants):
    """callbridge + simulator + directory, started together and stopped together."""

    def __init__(self, options: DemoOptions | None = None) -> None:
        self.options = options or DemoOptions()
        if self.options.speed <= 0:
            raise ValueError("speed must be positive")
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._scripted: set[str] = set()
        self._call_keys: set[str] = set()
        self._pops = 0
        self._checks: list[ScenarioChecked] = []
        self._cleanup: list[Callable[[], None]] = []
        self.data_dir: Path | None = None
        self.ingress_token = new_token("demo-ingress")
        self.api_token = new_token("demo-api")
        self._sim: Simulator | None = None
        self._server: ServerThread | None = None
        self._running: Assembly | None = None
        self._directory: DemoDirectory | None = None
        self._http: httpx.Client | None = None
        #: With two companies (``DemoOptions.companies``): each one, and its directory.
        self.companies: tuple[DemoCompany, ...] = ()
        self._directories: dict[int, DirectoryPlugin] = {}

    # ------------------------------------------------------------------ parts

    @property
    def sim(self) -> Simulator:
        """The simulated PBX (after ``start``)."""
        if self._sim is None:
            raise RuntimeError("the demo is not started")
        return self._sim

    @property
    def server(self) -> ServerThread:
        """callbridge's HTTP service thread (after ``start``)."""
        if self._server is None:
            raise RuntimeError("the demo is not started")
        return self._server

    @property
    def running(self) -> Assembly:
        """callbridge's services and engine (after ``start``)."""
        if self._running is None:
            raise RuntimeError("the demo is not started")
        return self._running

    def running_or_none(self) -> Assembly | None:
        """callbridge's services and engine, or None when not (or no longer) started."""
        return self._running

    @property
    def engine(self) -> Engine:
        """callbridge's engine."""
        return self.running.local_engine

    @property
    def settings(self) -> Settings:
        """The settings callbridge runs with."""
        return self.running.services.settings

    @property
    def directory(self) -> DemoDirectory:
        """The directory plugin (contacts and activities)."""
        if self._directory is None:
            raise RuntimeError("the demo is not started")
        return self._directory

    @property
    def url(self) -> str:
        """callbridge's base URL."""
        return self.server.url

    def panel_url(self, extension: str = "201") -> str:
        """The agent panel, signed in through the URL fragment (never sent to a server)."""
        token = self.api_token_for(extension)
        return f"{self.url}/agent#extension={quote(extension)}&token={quote(token)}"

    def subscribe(self, listener: Listener) -> None:
        """Hear every ``DemoEvent`` (called from several threads; must not block)."""
        with self._lock:
            self._listeners.append(listener)

    def _emit(self, event: DemoEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("demo listener failed")

    # ------------------------------------------------------------------ life cycle

    def start(self) -> Demo:
        """Start the simulator, then callbridge; on any failure, undo what was started."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        options = self.options
        if options.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="callbridge-demo-")
            self.data_dir = Path(self._tmp.name)
        else:
            self.data_dir = options.data_dir.expanduser()
            self.data_dir.mkdir(parents=True, exist_ok=True)
        sock = bind_socket(options.host, options.port)
        port = int(sock.getsockname()[1])
        try:
            seri = options.dialect == "seri"
            path = SERI_PATH if seri else PATH
            sink = self._event_sink(f"http://{options.host}:{port}{path}", options.companies)
            seri_token = new_token("demo-seri")
            self._sim = Simulator(
                sink=sink,
                settings=PbxSettings(seri_token=seri_token),
                directory=two_company_directory() if self.companies else None,
                host=options.host,
                dialect=options.dialect,
            ).start()
            settings = demo_settings(
                self.data_dir,
                soap_url=self._sim.url,
                ingress_token=self.ingress_token,
                api_token=self.api_token,
                host=options.host,
                port=port,
                pbx={"dialect": options.dialect, "seri_url": self._sim.seri_url}
                | ({"seri_token": seri_token} if seri else {}),
                **self._companies_file(seri_token if seri else None),
            )
            self._directory = DemoDirectory.seeded(
                self.data_dir / "directory.sqlite3", settings.default_region
            )
            self._running = assemble(settings, self._directory)
            self._directories = self._company_directories()
            # The engine is started here rather than by the app's lifespan, so the HTTP
            # service can go down and come back (``restart_http``) while calls go on.
            app = create_app(self._running.services, manage_engine=False)
            self._running.local_engine.start()
            self._server = ServerThread(app, host=options.host, port=port)
        except BaseException:
            sock.close()
            raise
        self._server.start(sock=sock)
        self._cleanup.append(self.engine.bus.subscribe(None, self._on_agent_event))
        for directory in {self._directory, *self._directories.values()}:
            if isinstance(directory, DemoDirectory):
                self._cleanup.append(directory.add_listener(self._on_activity))
        self._sim.outgoing_listeners.append(self._answer_panel_calls)
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.api_token}"},
            timeout=30.0,
        )

    def stop(self) -> None:
        """Stop the simulator, the HTTP service and the engine; remove a temporary data dir."""
        for undo in reversed(self._cleanup):
            undo()
        self._cleanup.clear()
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._sim is not None:
            with contextlib.suppress(Exception):
                self._sim.flush(timeout=5)
            self._sim.stop()
            self._sim = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._running is not None:
            self._running.close()
            self._running = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def stop_http(self) -> None:
        """Take the HTTP service down (streams drop, ingress refuses); the engine keeps going."""
        self.server.stop()

    def start_http(self) -> None:
        """Serve again on the same port (after ``stop_http``)."""
        self.server.start()

    def __enter__(self) -> Demo:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ what callbridge says

    def _on_agent_event(self, event: AgentEvent) -> None:
        if event.kind != "pop":
            return
        data = event.data
        call = data.get("call") or {}
        contacts = data.get("contacts") or {}
        found = contacts.get("directory") or next(iter(contacts.values()), None)
        candidates = len(found.get("candidates") or []) if found else 0
        key = str(call.get("key", ""))
        with self._lock:
            self._pops += 1
            self._call_keys.add(key)
        self._emit(
            CallUpdate(
                key=key,
                extension=event.extension,
                state=str(data.get("state", "")),
                direction=str(call.get("direction", "")),
                number=str(call.get("remote_e164") or call.get("remote_number") or ""),
                contact=None if found is None or candidates else found.get("name"),
                company=None if found is None or candidates else found.get("company"),
                ambiguous=candidates,
                outcome=call.get("outcome"),
                group=call.get("group"),
            )
        )

    def _on_activity(self, record: CallRecord, ref: ActivityRef) -> None:
        directory = self.directory_for(int(record.call.company_id or 1))
        row = next((a for a in directory.list_activities(50) if str(a.id) == ref.record_id), None)
        call = record.call
        self._emit(
            ActivityWritten(
                plugin=ref.connector or directory.name,
                activity_id=ref.record_id,
                key=call.key,
                extension=call.extension or "",
                direction=call.direction.value,
                outcome=call.outcome.value if call.outcome else None,
                number=call.remote_e164 or call.remote_number,
                contact=row.contact_name if row else None,
            )
        )

    def _answer_panel_calls(self, call: SimCall) -> None:
        """The simulated customer answers calls placed from the panel, then hangs up."""
        leg = call.caller_leg
        if not call.ext_id or call.ext_id in self._scripted or leg is None:
            return
        if leg.remote.user is not None or len(call.legs) > 1:
            return
        sim = self.sim
        answer_after = self.options.panel_answer_after
        sim.later(answer_after, lambda: sim.answer(call))
        sim.later(answer_after + self.options.panel_talk_time, lambda: sim.hangup(call, "remote"))

    # ------------------------------------------------------------------ playing

    def click_to_call(
        self,
        extension: str,
        number: str,
        *,
        contact_id: int | None = None,
        external_id: str | None = None,
    ) -> dict[str, object]:
        """``POST /v1/calls`` as a CRM would: returns the API's answer (external id, state)."""
        if self._http is None:
            raise RuntimeError("the demo is not started")
        body: dict[str, object] = {"agent": extension, "number": number}
        if external_id is not None:
            body["external_id"] = external_id
        if contact_id is not None:
            body["crm"] = {
                "connector": "directory",
                "record_type": "contact",
                "record_id": str(contact_id),
            }
        auth = {"Authorization": f"Bearer {self.api_token_for(extension)}"}
        response = self._http.post("/v1/calls", json=body, headers=auth)
        response.raise_for_status()
        answer: dict[str, object] = response.json()
        return answer

    def play(self, scenario: Scenario, *, round_: int = 1) -> Played:
        """Play one scenario at the demo's speed; a leading click-to-call goes through the API."""
        self._emit(ScenarioStarted(scenario.name, scenario.summary, round_))
        sim = self.sim
        with (
            ScenarioPlayer(sim, realtime=True, speed=self.options.speed) as runner,
            runner.shaped(scenario),
        ):
            scenario, clicked = self._click_first(scenario)
            result = runner.run(scenario)
        sim.flush()
        return Played(scenario, result, clicked, dialect=self.options.dialect)

    def _click_first(self, scenario: Scenario) -> tuple[Scenario, dict[str, int]]:
        """Place a leading ``soap_call_req`` through callbridge's API instead of by hand."""
        first = scenario.steps[0]
        if first.action != "soap_call_req":
            return scenario, {}
        args = first.args
        label, extension, number = str(args["call"]), str(args["extension"]), str(args["number"])
        found = self.directory_for(scenario.company_id).find(number)
        contact_id = found[0].id if found else None
        external_id = new_external_id()
        self._scripted.add(external_id)
        self.click_to_call(extension, number, contact_id=contact_id, external_id=external_id)
        who = f" from {found[0].name}'s record" if found else ""
        self._emit(Note(f"{extension} clicks {number}{who}: POST /v1/calls -> CallReq"))
        waiting = Step(
            "await_call_req", {"call": label, "extension": extension, "timeout": 15}, first.wait
        )
        changed = dataclasses.replace(scenario, steps=(waiting, *scenario.steps[1:]))
        return changed, ({label: contact_id} if contact_id is not None else {})

    def check(self, played: Played) -> ScenarioChecked:
        """Compare one run with its declared activities (now, without waiting)."""
        journal = self.running.services.journal

        def external_id_of(key: str) -> str | None:
            call = journal.get_call(key)
            return call.external_id if call else None

        directory = self.directory_for(played.scenario.company_id)
        activities = directory.list_activities(100_000)
        problems = check_played(played, activities, directory, external_id_of)
        for company_id, other in self._directories.items():
            if company_id != played.scenario.company_id:
                problems += foreign_activities(played, other.list_activities(100_000))
        checked = ScenarioChecked(played.scenario.name, tuple(problems))
        with self._lock:
            self._checks.append(checked)
        self._emit(checked)
        return checked

    def wait_for_activities(self, played: list[Played], timeout: float = 30.0) -> bool:
        """Wait until every run has its expected number of activities and nothing is open."""
        journal = self.running.services.journal

        def done() -> bool:
            for p in played:
                activities = self.directory_for(p.scenario.company_id).list_activities(100_000)
                if len(activities_of(p, activities)) < p.expected_total():
                    return False
            mine = {key for p in played for key in p.user_call_ids()}
            open_calls = journal.list_calls(10_000, open_only=True)
            return not any(c.user_call_id in mine for c in open_calls)

        return wait_until(done, timeout)

    def _try_play(self, scenario: Scenario, round_: int = 1) -> Played | ScenarioChecked:
        """Play, or say why the scenario could not be played (a failed check, not a crash)."""
        try:
            return self.play(scenario, round_=round_)
        except (ScenarioError, SimError, httpx.HTTPError) as exc:
            checked = ScenarioChecked(scenario.name, (f"could not be played: {exc}",))
            with self._lock:
                self._checks.append(checked)
            self._emit(checked)
            return checked

    def run_once(
        self, scenarios: list[Scenario] | None = None, timeout: float = 45.0
    ) -> list[ScenarioChecked]:
        """Play each scenario once, wait for callbridge to settle, check every one."""
        runs = [self._try_play(s) for s in scenarios or demo_scenarios(len(self.companies))]
        played = [run for run in runs if isinstance(run, Played)]
        if not self.wait_for_activities(played, timeout):
            self._emit(Note(f"still waiting for activities after {timeout:.0f}s; checking now"))
        self.engine.wait_idle(timeout=10)
        return [self.check(run) if isinstance(run, Played) else run for run in runs]

    def run_forever(
        self, stop: threading.Event | None = None, scenarios: list[Scenario] | None = None
    ) -> None:
        """Play the scenarios in a loop (each checked as it settles) until ``stop`` is set."""
        stop = stop or threading.Event()
        chosen = scenarios or demo_scenarios(len(self.companies))
        for round_, scenario in rounds(chosen):
            if stop.is_set():
                return
            run = self._try_play(scenario, round_=round_)
            if isinstance(run, Played):
                self.wait_for_activities([run], timeout=20)
                self.check(run)
            if stop.wait(1.0 / self.options.speed):
                return

    # ------------------------------------------------------------------ summary

    def summary(self) -> Summary:
        """Calls and pops seen, activities per plugin, deliveries still pending or dead."""
        journal = self.running.services.journal
        done = journal.list_deliveries(state=DeliveryState.DONE, limit=1_000_000)
        pending = journal.list_deliveries(state=DeliveryState.PENDING, limit=1_000_000)
        dead = journal.list_deliveries(state=DeliveryState.DEAD, limit=1_000_000)
        with self._lock:
            return Summary(
                calls=len(self._call_keys - {""}),
                pops=self._pops,
                activities=dict(Counter(d.plugin for d in done)),
                pending=len(pending),
                dead=len(dead),
                checks=tuple(self._checks),
            )


def assemble(settings: Settings, directory: DemoDirectory) -> Assembly:
    """The service's one assembly, with the demo's directory as the only plugin.

    No built-in or installed connector is loaded: none of them may read the user's variables
    and reach a real CRM from the demo.
    """
    return assemble_parts(settings, extra_plugins=[directory], only_extra_plugins=True)
