"""``LivePbx``: the simulator's PBX in front of a live callbridge, for end-to-end tests.

An end-to-end test of a connector wants the whole path: the VOIspeed simulator's SOAP server
and event emitter, callbridge as ``callbridge serve`` runs it (``LiveService``: settings from
``CALLBRIDGE_*`` variables, plugins from their entry points, uvicorn on a real port) and the
CRM (a fake on the kit's ``FakeHttpService``). Every connector used to wire the first two the
same way; this is that wiring, once::

    def test_inbound(callbridge_env, fake_crm):
        with LivePbx(callbridge_env, {"CALLBRIDGE_ACME_URL": fake_crm.url}, plugin="acme") as pbx:
            pbx.play("inbound-answered")
            assert pbx.events_accepted()

or the ``live_pbx`` fixture: ``live_pbx({...}, plugin="acme")`` -> a started ``LivePbx``,
stopped after the test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from ..journal.base import Delivery
from ..journal.factory import SQLITE_FILE_NAME
from ..journal.sqlite import SqliteJournal
from ..lifecycle import Startable
from ..sim import FanoutSink, HttpSink, MemorySink, Simulator
from ..sim.emitter import TextForm
from ..sim.playback import play
from ..sim.scenarios import PlayResult, find_scenario
from .live import LiveService, SseMessage, SseReader
from .wait import wait_until

if TYPE_CHECKING:
    import httpx

    from .env import CallbridgeEnv

__all__ = ["API_TOKEN", "INGRESS_TOKEN", "PBX_AGENTS", "LivePbx", "PlacedCall"]

#: The token the simulator sends its events with.
INGRESS_TOKEN = "e2e-ingress-token-0123456789"  # noqa: S105 - a test token
#: An API token with every extension (``/v1/...``, the agents' event streams).
API_TOKEN = "e2e-api-token-0123456789"  # noqa: S105 - a test token
#: The agents of the built-in scenarios: extension -> PBX user (201 Mario, 203 Luca).
PBX_AGENTS = "201=auth-mario@acme,203=auth-luca@acme"


def base_settings(soap_url: str) -> dict[str, str]:
    """The core settings of a live PBX test: the simulator's SOAP endpoint and users, the
    tokens, and short retry delays and heartbeats (a test waits for retries, not minutes)."""
    return {
        "CALLBRIDGE_INGRESS_TOKEN": INGRESS_TOKEN,
        "CALLBRIDGE_SERVER__API_TOKENS": f"{API_TOKEN}:*",
        "CALLBRIDGE_SERVER__HEARTBEAT": "0.5",
        "CALLBRIDGE_PBX__SOAP_URL": soap_url,
        "CALLBRIDGE_PBX__USER": "auth-callbridge@acme",
        "CALLBRIDGE_PBX__PASSWORD": "callbridge",
        "CALLBRIDGE_PBX__AGENTS": PBX_AGENTS,
        "CALLBRIDGE_DISPATCH__WORKERS": "2",
        "CALLBRIDGE_DISPATCH__BACKOFF_INITIAL": "0.05",
        "CALLBRIDGE_DISPATCH__BACKOFF_MAX": "0.2",
    }


@dataclass(frozen=True)
class PlacedCall:
    """A click-to-call as the service saw it: its answer to ``POST /v1/calls`` and its view
    of the call once ended (``GET /v1/calls/{external_id}``)."""

    external_id: str
    placed: dict[str, Any]
    ended: dict[str, Any]

    @property
    def key(self) -> str:
        """The journal's key of the call."""
        return str(self.ended["call"]["key"])


class LivePbx(Startable):
    """A started simulator sending its events to a live service; ``start``/``stop`` or ``with``.

    ``settings`` are ``CALLBRIDGE_*`` variables on top of ``base_settings`` (a connector's
    own, or a core setting the test changes); they are set through ``env`` (the
    ``callbridge_env`` fixture), so they are gone after the test. ``plugin``: the connector
    that must come up ``active`` (a ``RuntimeError`` naming every plugin's state otherwise).
    The events the simulator sent are kept in ``sent`` (a test can send them again) and the
    ingress's answers in ``sink.deliveries``. A real site's shapes: ``text`` (how names are
    encoded in the event URLs) and ``sim_options`` (``directory``, ``ext_reading``,
    ``group_end``...: what ``Simulator`` takes). ``crm`` is the test's own (its fake CRM and the
    records it made), kept here so that one fixture hands a test everything.
    """

    def __init__(
        self,
        env: CallbridgeEnv,
        settings: Mapping[str, Any] | None = None,
        *,
        plugin: str | None = None,
        service: LiveService | None = None,
        crm: Any = None,
        text: TextForm = "utf-8",
        **sim_options: Any,
    ) -> None:
        self.env = env
        #: Whatever the test carries along with it: its fake CRM and the records it made.
        self.crm = crm
        self.settings = dict(settings or {})
        self.plugin = plugin
        #: The service (its port is reserved now: the simulator's sink needs the URL).
        self.service = service or LiveService()
        self.sink = HttpSink(f"{self.service.url}/pbx/events", token=INGRESS_TOKEN, text=text)
        self.sent = MemorySink()
        self.sim = Simulator(sink=FanoutSink(self.sink, self.sent), **sim_options)
        self.api_token = API_TOKEN

    @property
    def data_dir(self) -> Path:
        """The service's data directory (journal, connectors' ledgers)."""
        return self.env.data_dir

    def start(self) -> Self:
        """Start the simulator, configure the service for it and start the service."""
        self.sim.start()
        try:
            self.env.set({**base_settings(self.sim.url), **self.settings})
            self.service.start()
            if self.plugin is not None:
                states = self.service.plugin_states()
                if states.get(self.plugin) != "active":
                    raise RuntimeError(f"{self.plugin} is not active: {states}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the simulator (its queued events are delivered first), then the service."""
        try:
            self.sim.stop()
        finally:
            self.service.stop()

    def events_accepted(self) -> bool:
        """Every event the simulator sent so far was accepted by the ingress (2xx)."""
        self.sim.flush()
        return all(d.ok for d in self.sink.deliveries)

    def play(self, scenario: str, **options: Any) -> PlayResult:
        """Play a built-in scenario (``inbound-answered``...) on the simulator; ``options``
        as ``play`` takes them (``speed=2.0``, ``realtime=False``)."""
        return play(self.sim, find_scenario(scenario), **options)

    def play_until_pop(
        self, scenario: str, plugin: str, *, extension: str = "201", speed: float = 2.0
    ) -> dict[str, Any]:
        """Play ``scenario`` in real time (``speed`` times faster) while reading
        ``extension``'s stream; return the data of the first pop that carries ``plugin``'s
        contact with its URL (the screen pop a CRM user would click), once it came."""

        def linked(message: SseMessage) -> bool:
            contact = (message.data.get("contacts") or {}).get(plugin) or {}
            return message.event == "pop" and bool(contact.get("url"))

        with self.agent_events(extension) as stream:
            self.play(scenario, speed=speed)
            messages = stream.wait_for(lambda ms: any(map(linked, ms)), f"the {plugin} pop")
        return next(m.data for m in messages if linked(m))

    def play_inbound_pair(self, plugin: str) -> dict[str, Any]:
        """The built-in scenarios' two inbound calls, as a connector's end-to-end test plays
        them: ``inbound-answered`` in real time (twice as fast: the talk lasts about two
        seconds) until agent 201's pop carries ``plugin``'s contact with its URL, then
        ``inbound-missed`` (agent 203) at once. Every event must be accepted; returns the
        pop (``pop["contacts"][plugin]``: the contact the agent saw while it rang)."""
        pop = self.play_until_pop("inbound-answered", plugin)
        self.play("inbound-missed", realtime=False)
        if not self.events_accepted():
            raise AssertionError(f"the ingress refused an event: {self.sink.deliveries}")
        return pop

    def stop_with_delivery_pending(self, plugin: str, extension: str = "201") -> Delivery:
        """Wait until ``plugin``'s delivery of ``extension``'s call was attempted (and failed,
        as the test arranged), stop the service, and return that delivery as the journal
        file holds it: what the next ``service.start()`` (same port, same data directory)
        starts from."""
        call = self.service.call_of(extension)
        wait_until(
            lambda: self.service.delivery_of(call.key, plugin).attempts >= 1,
            f"the {plugin} delivery attempted",
        )
        self.service.stop()
        journal = SqliteJournal(self.data_dir / SQLITE_FILE_NAME)
        try:
            found = journal.list_deliveries(call_keys=[call.key])
        finally:
            journal.close()
        (delivery,) = [d for d in found if d.plugin == plugin]
        return delivery

    def click_to_call(
        self, number: str, crm: Mapping[str, str] | None = None, *, agent: str = "201"
    ) -> PlacedCall:
        """Place a call through the service (``POST /v1/calls``, what a CRM's click-to-dial
        sends; ``crm``: the record it was clicked on), answer it in the simulated PBX, hang
        up from the agent's side, and return once the service saw the call end."""
        body: dict[str, Any] = {"agent": agent, "number": number}
        if crm is not None:
            body["crm"] = dict(crm)
        with self.api() as api:
            response = api.post("/v1/calls", json=body)
            if response.status_code != 202:
                raise AssertionError(
                    f"click-to-call refused: {response.status_code} {response.text}"
                )
            external_id = str(response.json()["external_id"])
            call = self.sim.find_call(external_id)
            if call is None:
                raise AssertionError(f"the simulated PBX has no call {external_id}")
            self.sim.answer(call)
            self.sim.hangup(call, by="local")
            if not self.events_accepted():
                raise AssertionError("the ingress refused an event of the click-to-call")

            def ended() -> dict[str, Any]:
                state: dict[str, Any] = api.get(f"/v1/calls/{external_id}").json()
                return state if state.get("state") == "ended" else {}

            return PlacedCall(external_id, response.json(), wait_until(ended, "the call's end"))

    def agent_events(self, extension: str) -> SseReader:
        """An agent's event stream (pops), read with the API token: use it as ``with``."""
        return SseReader(self.service.url, extension, self.api_token)

    def api(self) -> httpx.Client:
        """An HTTP client on the service's API with the API token."""
        return self.service.api(self.api_token)

    def __repr__(self) -> str:
        return f"LivePbx(service={self.service!r}, plugin={self.plugin!r})"
