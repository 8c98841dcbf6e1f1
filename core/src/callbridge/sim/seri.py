"""The simulated PBX's integration module ("SERI"): its events and its command endpoint.

With ``dialect="seri"`` the simulator calls the event URL as VOIspeed's integration module
does (``event_name=incoming_call&ext=201&number=...&usercallid=...``) instead of with the
document's ``ssn_event``, and ``seri_endpoint.php`` (GET, ``service=...&token=...``) takes
commands beside the SOAP endpoint. Names come from ``PbxSettings.seri``, the same settings
callbridge reads, so both sides can be switched to another spelling together.

What the module does not send (as far as public integrations show): device events, the
caller's identity, the group. Those are simply not emitted in this dialect; a call's legs
still meet in callbridge's tracker by their numbers and times.

A ``call_request`` the engine cannot carry out (an unknown extension, an empty number) is
answered ``<outcome>0</outcome>`` with a ``request_id`` and then reported by a
``cmd_failed`` event naming that request and our ``extid``, which is how a PBX that
queues commands reports a failure; ``fail_in_answer = True`` refuses in the answer instead.
"""

from __future__ import annotations

import hmac
import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from ..settings import PbxSettings
from ..voispeed.codes import Direction, SsnEvent

if TYPE_CHECKING:
    from .calls import SimLeg
    from .engine import CallEngine
    from .engine_base import EngineBase

#: The services the simulated module knows.
SERVICES = ("call_request", "get_user_call_report")


def seri_event(
    engine: EngineBase, code: SsnEvent, leg: SimLeg, number: str, ext_id: str
) -> dict[str, str]:
    """The integration module's event for one of the engine's call events of ``leg``.

    ``number`` is the other party as the document's event has it (for a 20/21 after a
    transfer it may differ from ``leg.remote``).
    """
    names = engine.settings_seri
    incoming = leg.direction is Direction.INCOMING
    by_code = {
        SsnEvent.CALL_INCOMING: names.incoming_call,
        SsnEvent.CALL_OUTGOING: names.outgoing_call,
        SsnEvent.CALL_ANSWERED: names.call_answered,
        # Never answered: a missed call for our user; on a call out, the callee refused.
        SsnEvent.CALL_REJECTED: names.lost_call if incoming else names.call_disconnect_in,
        SsnEvent.CALL_REMOTE_HANGUP: names.call_disconnect_in,
        SsnEvent.CALL_LOCAL_HANGUP: names.call_disconnect_out,
    }
    remote = leg.remote.number
    if code in (SsnEvent.CALL_REMOTE_HANGUP, SsnEvent.CALL_LOCAL_HANGUP):
        remote = number
    params = {
        names.event_param: by_code[code],
        names.ext_param: leg.user.extension,
        names.number_param: remote,
        names.call_id_param: str(int(leg.user_call_id, 16)),
        "datetime": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        engine.company_param: str(leg.user.company_id),
    }
    if ext_id:
        params[names.ext_id_param] = ext_id
    if code is SsnEvent.CALL_INCOMING and leg.dialled and leg.dialled != leg.user.extension:
        params[names.dialled_params[0] if names.dialled_params else "called"] = leg.dialled
    if code in (SsnEvent.CALL_REMOTE_HANGUP, SsnEvent.CALL_LOCAL_HANGUP):
        params["duration"] = "0"
    return params


@dataclass(frozen=True)
class SeriLogEntry:
    """One request to the simulated ``seri_endpoint.php`` (token removed) and its outcome."""

    service: str
    params: dict[str, str]
    outcome: str
    request_id: str | None = None
    error: str | None = None


@dataclass
class SeriService:
    """``seri_endpoint.php``: checks the token, runs ``call_request`` on the engine."""

    engine: CallEngine
    settings: PbxSettings
    log: list[SeriLogEntry] = field(default_factory=list)
    #: ``xml`` (the default), or a key of ``NON_SOAP_ANSWERS``: the body of an answer.
    answer: str = "xml"
    #: Refuse a command the engine cannot carry out in the answer (not with cmd_failed).
    fail_in_answer: bool = False
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, query: Mapping[str, str]) -> tuple[int, bytes]:
        """Answer one GET: (HTTP status, body). Never raises."""
        names = self.settings.seri
        service = query.get(names.service_param, "")
        params = {k: v for k, v in query.items() if k != "token"}
        token = self.settings.seri_token
        given = query.get("token", "")
        if token is None or not hmac.compare_digest(
            given.encode(), token.get_secret_value().encode()
        ):
            return self._refuse(service, params, "401", "invalid token or commands not enabled")
        if service == names.user_call_report:
            return self._done(service, params, None, "<calls/>")
        if service != names.call_request:
            return self._refuse(service, params, "404", f"unknown service {service!r:.40}")
        ext, number = params.get("ext", "").strip(), params.get("number", "").strip()
        if not ext or not number:
            return self._refuse(service, params, "400", "ext and number are required")
        request_id = str(next(self._ids))
        ext_id = params.get("extid", "").strip()
        try:
            self.engine.outgoing_call(
                ext, number, ext_id=ext_id or None, device_id=params.get("device") or None
            )
        except Exception as exc:  # SimError: what a real PBX would fail on
            if self.fail_in_answer:
                return self._refuse(service, params, "500", str(exc))
            self._failed_later(request_id, ext_id, ext, number, str(exc))
        return self._done(service, params, request_id, "")

    def _failed_later(self, request_id: str, ext_id: str, ext: str, number: str, why: str) -> None:
        names = self.settings.seri
        event = {
            names.event_param: names.cmd_failed,
            names.ext_param: ext,
            names.number_param: number,
            names.request_id_param: request_id,
            names.error_code_param: "500",
            names.error_msg_param: why,
        }
        if ext_id:
            event[names.ext_id_param] = ext_id
        self.engine.sink.emit(event)

    def _record(self, entry: SeriLogEntry) -> None:
        with self._lock:
            self.log.append(entry)

    def _done(
        self, service: str, params: dict[str, str], request_id: str | None, extra: str
    ) -> tuple[int, bytes]:
        from .soap_server import NON_SOAP_ANSWERS  # it imports the engine, which imports us

        names = self.settings.seri
        self._record(SeriLogEntry(service, params, "0", request_id))
        if self.answer in NON_SOAP_ANSWERS:
            return 200, NON_SOAP_ANSWERS[self.answer]
        rid = f"<{names.request_id_element}>{request_id}</{names.request_id_element}>"
        body = (
            f"<response><{names.outcome_element}>0</{names.outcome_element}>"
            f"{rid if request_id else ''}{extra}</response>"
        )
        return 200, _xml(body)

    def _refuse(
        self, service: str, params: dict[str, str], code: str, why: str
    ) -> tuple[int, bytes]:
        names = self.settings.seri
        self._record(SeriLogEntry(service, params, "1", error=why))
        body = (
            f"<response><{names.outcome_element}>1</{names.outcome_element}>"
            f"<error_code>{code}</error_code><error_msg>{escape(why)}</error_msg></response>"
        )
        return 200, _xml(body)


def _xml(body: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()
