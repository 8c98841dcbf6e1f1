"""Playing scenarios on a started simulator: each step as a phone action or a SOAP command.

Apart from ``scenarios`` (parsing and checking the files) because playing needs a live
``Simulator`` and a SOAP client, and parsing needs neither.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..voispeed.ids import new_external_id
from ..voispeed.soap import SoapClient, SoapOutcomeUnknown
from .engine import LegState, SimCall, SimError, SimLeg
from .model import integration_login
from .scenarios import _CALL, _STARTS_CALL, PlayResult, Scenario, ScenarioError, Step
from .simulator import Simulator


class ScenarioPlayer:
    """Plays scenarios on a started ``Simulator``.

    ``realtime``: honour waits (divided by ``speed``); otherwise run steps back to back.
    SOAP steps use a ``SoapClient`` on the simulator's own endpoint.
    """

    def __init__(self, sim: Simulator, *, realtime: bool = True, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.sim = sim
        self.realtime = realtime
        self.speed = speed
        #: A SOAP client per company: each acts with its own company's integration account.
        self._clients: dict[int, SoapClient] = {}
        self._company = 1
        self._seen_requests: set[int] = set()
        self._claimed: set[str] = set()
        self._new_calls: list[SimCall] = []
        self._cond = threading.Condition()
        sim.outgoing_listeners.append(self._on_outgoing)

    def close(self) -> None:
        """Release the SOAP client and stop listening to the simulator."""
        if self._on_outgoing in self.sim.outgoing_listeners:
            self.sim.outgoing_listeners.remove(self._on_outgoing)
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> ScenarioPlayer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def client(self) -> SoapClient:
        """The SOAP client on the simulator's endpoint, as the integration account of the
        scenario's company (created on first use)."""
        client = self._clients.get(self._company)
        if client is None:
            login = integration_login(self.sim.directory, self._company)
            settings = self.sim.pbx_settings(login) if login else self.sim.pbx_settings()
            client = self._clients[self._company] = SoapClient(settings)
        return client

    def _on_outgoing(self, call: SimCall) -> None:
        with self._cond:
            self._new_calls.append(call)
            self._cond.notify_all()

    def run(self, scenario: Scenario) -> PlayResult:
        """Play every step; raise ScenarioError (with the step) when one cannot be done.

        The scenario's ``[pbx]`` shapes the simulator for the run and is undone after it.
        """
        self._company = scenario.company_id
        with self.shaped(scenario):
            return self._run(scenario)

    @contextlib.contextmanager
    def shaped(self, scenario: Scenario) -> Iterator[None]:
        """Set the simulator as the scenario's ``[pbx]`` says; put it back afterwards."""
        before = (self.sim.ext_id_mode, self.sim.service.answer)
        self.sim.ext_id_mode, self.sim.service.answer = scenario.ext_id, scenario.answer
        try:
            yield
        finally:
            self.sim.ext_id_mode, self.sim.service.answer = before

    def _run(self, scenario: Scenario) -> PlayResult:
        result = PlayResult(scenario)
        for index, step in enumerate(scenario.steps, 1):
            if self.realtime and step.wait:
                time.sleep(step.wait / self.speed)
            try:
                self._do(step, result)
                if step.action in _STARTS_CALL:
                    with self._cond:
                        self._claimed.add(result.calls[str(step.args[_CALL])].call_id)
            except (SimError, ScenarioError) as exc:
                raise ScenarioError(
                    f"{scenario.name}: step {index} ({step.action}): {exc}"
                ) from None
            except Exception as exc:  # a SOAP fault or transport error from the client
                raise ScenarioError(
                    f"{scenario.name}: step {index} ({step.action}): {type(exc).__name__}: {exc}"
                ) from exc
        return result

    def _login(self, extension: str) -> str:
        user = self.sim.directory.user_by_extension(extension)
        if user is None:
            raise ScenarioError(f"unknown extension {extension}")
        return user.login

    def _leg_id(self, call: SimCall, extension: str | None, states: tuple[LegState, ...]) -> str:
        call = call.resolved()
        legs = [leg for leg in call.legs if leg.state in states]
        if extension is not None:
            legs = [leg for leg in legs if leg.user.extension == extension]
        if not legs:
            raise ScenarioError(f"no leg of call {call.call_id} for {extension or 'anyone'}")
        return legs[-1].user_call_id

    def _do(self, step: Step, result: PlayResult) -> None:
        sim, a = self.sim, step.args
        action = step.action
        calls = result.calls
        label = str(a.get(_CALL, ""))
        ext = str(a["extension"]) if "extension" in a else None
        soap = bool(a.get("soap", False))
        if action == "incoming":
            calls[label] = sim.incoming_call(str(a["from"]), str(a["to"]), a.get("caller_name"))
        elif action == "internal":
            calls[label] = sim.internal_call(str(a["from"]), str(a["to"]))
        elif action == "outgoing":
            calls[label] = sim.outgoing_call(
                str(a["extension"]),
                str(a["number"]),
                ext_id=a.get("external_id"),
                callee_name=a.get("callee_name"),
            )
        elif action == "soap_call_req":
            self._soap_call_req(a, result, label)
        elif action == "await_call_req":
            call = self._await_call(float(a.get("timeout", 30)), ext)
            calls[label] = call
            result.external_ids[label] = call.ext_id
        elif action == "answer":
            self._answer(calls[label], ext, soap)
        elif action == "reject":
            sim.reject(calls[label], ext)
        elif action == "hangup":
            self._hangup(calls[label], str(a.get("by", "local")), ext, soap)
        elif action in ("hold", "retrieve", "record_start", "record_stop"):
            self._leg_command(action, calls[label], ext, soap)
        elif action == "divert":
            leg_id = self._leg_id(calls[label], ext, (LegState.RINGING,))
            if soap:
                self.client.call_divert(sim.leg(leg_id).user.login, leg_id, str(a["to"]))
            else:
                sim.divert(sim.leg(leg_id), str(a["to"]))
        elif action == "transfer":
            assert ext is not None
            self._transfer(calls[label], calls[str(a["to_call"])], ext, soap)
        elif action == "pick":
            assert ext is not None
            calls.setdefault(label, self._pick(ext, str(a["target"]), soap).call)
        elif action == "hunt_next":
            sim.hunt_next(calls[label])
        elif action == "device_login":
            sim.device_login(str(a["device"]))
        elif action == "device_logout":
            sim.device_logout(str(a["device"]))
        else:  # pragma: no cover - ACTIONS and this dispatch list the same names
            raise ScenarioError(f"action {action} not implemented")

    def _answer(self, call: SimCall, ext: str | None, soap: bool) -> None:
        """``ext`` (or the ringing party) answers, by SOAP CallAccept or on the phone."""
        if soap:
            leg_id = self._leg_id(call, ext, (LegState.RINGING,))
            self.client.call_accept(self.sim.leg(leg_id).user.login, leg_id)
        else:
            self.sim.answer(call, ext)

    def _hangup(self, call: SimCall, by: str, ext: str | None, soap: bool) -> None:
        """End the call: by SOAP CallDisconnect for a local hangup, else on the phone."""
        if soap and by == "local":
            live = (LegState.RINGING, LegState.ACTIVE, LegState.HELD)
            leg_id = self._leg_id(call, ext, live)
            self.client.call_disconnect(self.sim.leg(leg_id).user.login, leg_id)
        else:
            self.sim.hangup(call, by=by, extension=ext)  # type: ignore[arg-type]

    def _soap_call_req(self, a: dict[str, Any], result: PlayResult, label: str) -> None:
        """Place a call through SOAP CallReq, as a CRM's click-to-call does."""
        sim = self.sim
        wanted = a.get("external_id", "auto")
        ext_id = new_external_id() if wanted == "auto" else str(wanted)
        # A [pbx] answer that is not SOAP leaves the outcome unknown: ask the PBX, as a
        # client must, rather than send it again.
        with contextlib.suppress(SoapOutcomeUnknown):
            self.client.call_req(
                self._login(str(a["extension"])),
                str(a["number"]),
                device_id=a.get("device_id"),
                external_id=ext_id,
            )
        call = sim.find_call(ext_id)
        if call is None:
            raise ScenarioError(f"CallReq {ext_id} started no call")
        with self._cond:
            self._claimed.add(call.call_id)
        result.calls[label] = call
        result.external_ids[label] = ext_id

    def _transfer(self, call: SimCall, to_call: SimCall, ext: str, soap: bool) -> None:
        """Join ``ext``'s answered legs of two calls."""
        sim = self.sim
        answered = (LegState.ACTIVE, LegState.HELD)
        from_id = self._leg_id(call, ext, answered)
        to_id = self._leg_id(to_call, ext, answered)
        if soap:
            self.client.call_transfer(self._login(ext), from_id, to_id)
        else:
            sim.transfer(sim.leg(from_id), sim.leg(to_id))

    def _pick(self, ext: str, target: str, soap: bool) -> SimLeg:
        """``ext`` picks up a call ringing at ``target``; the leg it gets."""
        sim = self.sim
        if soap:
            user = sim.directory.user_by_extension(ext)
            devices = sim.directory.devices_of(user) if user else []
            if user is None or not devices:
                raise ScenarioError(f"extension {ext} has no device to pick up with")
            picked = self.client.call_pick(user.login, target, devices[0].wire_id)
            return sim.leg(picked.values["user_call_id"])
        return sim.pick(ext, target)

    def _leg_command(self, action: str, call: SimCall, ext: str | None, soap: bool) -> None:
        sim = self.sim
        states = {
            "hold": (LegState.ACTIVE,),
            "retrieve": (LegState.HELD,),
        }.get(action, (LegState.ACTIVE, LegState.HELD))
        leg_id = self._leg_id(call, ext, states)
        leg = sim.leg(leg_id)
        if soap:
            method = {
                "hold": self.client.call_hold,
                "retrieve": self.client.call_retrieve,
                "record_start": self.client.call_rec_start,
                "record_stop": self.client.call_rec_stop,
            }[action]
            method(leg.user.login, leg_id)
        elif action == "hold":
            sim.set_leg_state(leg, LegState.HELD)
        elif action == "retrieve":
            sim.set_leg_state(leg, LegState.ACTIVE)
        else:
            sim.record(leg, action == "record_start")

    def _await_call(self, timeout: float, extension: str | None) -> SimCall:
        """The next call placed through SOAP by someone else (e.g. callbridge's API)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for call in self._new_calls:
                    leg = call.caller_leg
                    if call.call_id in self._claimed or leg is None:
                        continue
                    if extension is None or leg.user.extension == extension:
                        self._claimed.add(call.call_id)
                        return call
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ScenarioError(f"no CallReq arrived within {timeout}s")
                self._cond.wait(remaining)


def play(
    sim: Simulator, scenario: Scenario, *, realtime: bool = True, speed: float = 1.0
) -> PlayResult:
    """Run one scenario on a started simulator."""
    with ScenarioPlayer(sim, realtime=realtime, speed=speed) as runner:
        return runner.run(scenario)
