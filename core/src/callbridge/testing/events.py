"""Realistic PBX callback parameters for every ssn_event, with the typed event they parse to.

Each builder returns a ``BuiltEvent``: the ``params`` exactly as the PBX (or its trigger)
would send them to ``/pbx/events`` and the ``event`` that ``callbridge.voispeed.parse_event``
makes of them. Tests that feed the ingress use ``params``; tests of a ``pbx_event`` hook use
``event``. Parsing here is the real parser, so a builder can never drift from it.

The document swaps the meaning of ``number`` and ``ext`` between events; the builders take
*roles* (``remote``, ``extension``) and put each in the right parameter, so a test reads like
the call it describes.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..voispeed.events import AnyEvent, parse_event

#: The remote party of the default call: an Italian landline in national format, as PBXs send.
REMOTE = "0612345678"
#: The same number in E.164 (what plugins receive with the default region ``IT``).
REMOTE_E164 = "+390612345678"
#: The default local user: extension, PBX user id, identity string.
EXTENSION = "201"
USER_ID = "1001"
IDENTITY = "Anna|Neri|Neri Costruzioni|0|0"
COMPANY_ID = "1"

Side = Literal["inbound", "outbound"]


@dataclass(frozen=True)
class BuiltEvent:
    """One callback: its parameters and the typed event they parse to."""

    params: dict[str, str]
    event: AnyEvent

    @property
    def ssn_event(self) -> int:
        """The event code."""
        return self.event.ssn_event


class EventFactory:
    """Builds events with realistic defaults; call ids are unique within one factory.

    ``company_param`` must match ``CALLBRIDGE_PBX__COMPANY_PARAM`` when a test changes it.
    """

    def __init__(
        self,
        *,
        company_id: str | None = COMPANY_ID,
        company_param: str = "company_id",
        first_call_id: int = 0x12A0,
    ) -> None:
        self.company_id = company_id
        self.company_param = company_param
        self._ids = itertools.count(first_call_id)
        self._devices = itertools.count(0x0D00)
        self._lock = threading.Lock()

    # -- identifiers ----------------------------------------------------------------------
    def call_id(self) -> str:
        """A fresh 8-character user call id such as ``000012A0``."""
        with self._lock:
            return f"{next(self._ids):08X}"

    def device_id(self) -> str:
        """A fresh 8-character device id."""
        with self._lock:
            return f"{next(self._devices):08X}"

    # -- the generic builder --------------------------------------------------------------
    def make(self, ssn_event: int, /, **params: str | int | None) -> BuiltEvent:
        """Any event from raw parameters (None values are left out); adds the company."""
        raw: dict[str, str] = {"ssn_event": str(ssn_event)}
        if self.company_id is not None:
            raw[self.company_param] = self.company_id
        raw.update({k: str(v) for k, v in params.items() if v is not None})
        return self.parse(raw)

    def parse(self, params: Mapping[str, str]) -> BuiltEvent:
        """Wrap parameters given verbatim (raises EventParseError like the ingress would)."""
        raw = dict(params)
        return BuiltEvent(raw, parse_event(raw, company_param=self.company_param))

    # -- devices (1, 2) -------------------------------------------------------------------
    def device_login(
        self,
        *,
        device_id: str | None = None,
        extension: str = EXTENSION,
        user_id: str = USER_ID,
        device_type: int = 2,
        device_host: str = "192.168.1.50:5060",
        device_name: str = "Yealink T46U",
        **extra: str,
    ) -> BuiltEvent:
        """ssn_event 1: a SIP phone logs in for ``extension``."""
        return self.make(
            1,
            device_id=device_id or self.device_id(),
            device_type=device_type,
            device_host=device_host,
            device_name=device_name,
            number=extension,
            user_id=user_id,
            **extra,
        )

    def device_logout(self, *, device_id: str | None = None, **kwargs: Any) -> BuiltEvent:
        """ssn_event 2: the device logs out (same parameters as the login)."""
        login = self.device_login(device_id=device_id, **kwargs)
        return self.make(2, **{k: v for k, v in login.params.items() if k != "ssn_event"})

    # -- calls (16-21) --------------------------------------------------------------------
    def incoming(
        self,
        call_id: str | None = None,
        *,
        remote: str = REMOTE,
        extension: str = EXTENSION,
        identity: str | None = IDENTITY,
        group: str | None = None,
        ext_id: str | None = None,
        sender_id: str | None = USER_ID,
        **extra: str,
    ) -> BuiltEvent:
        """ssn_event 16: ``remote`` calls the user at ``extension`` (number = caller)."""
        return self._call(16, call_id, remote, extension, identity, group, ext_id, sender_id, extra)

    def outgoing(
        self,
        call_id: str | None = None,
        *,
        remote: str = REMOTE,
        extension: str = EXTENSION,
        identity: str | None = None,
        ext_id: str | None = None,
        sender_id: str | None = USER_ID,
        **extra: str,
    ) -> BuiltEvent:
        """ssn_event 17: the user at ``extension`` calls ``remote`` (number = recipient)."""
        return self._call(17, call_id, remote, extension, identity, None, ext_id, sender_id, extra)

    def answered(
        self,
        call_id: str,
        *,
        direction: Side = "inbound",
        remote: str = REMOTE,
        extension: str = EXTENSION,
        **extra: str,
    ) -> BuiltEvent:
        """ssn_event 18: the callee answers (number = callee, ext = caller)."""
        return self._answer(18, call_id, direction, remote, extension, extra)

    def rejected(
        self,
        call_id: str,
        *,
        direction: Side = "inbound",
        remote: str = REMOTE,
        extension: str = EXTENSION,
        **extra: str,
    ) -> BuiltEvent:
        """ssn_event 19: the callee rejects (number = callee, ext = caller)."""
        return self._answer(19, call_id, direction, remote, extension, extra)

    def remote_hangup(
        self, call_id: str, *, remote: str = REMOTE, extension: str = EXTENSION, **extra: str
    ) -> BuiltEvent:
        """ssn_event 20: the remote party hangs up (number = remote, ext = the user)."""
        return self._call(20, call_id, remote, extension, None, None, None, USER_ID, extra)

    def local_hangup(
        self, call_id: str, *, remote: str = REMOTE, extension: str = EXTENSION, **extra: str
    ) -> BuiltEvent:
        """ssn_event 21: the user hangs up (number = remote, ext = the user)."""
        return self._call(21, call_id, remote, extension, None, None, None, USER_ID, extra)

    def hangup(
        self,
        call_id: str,
        *,
        by: Literal["remote", "local"] = "remote",
        remote: str = REMOTE,
        extension: str = EXTENSION,
        **extra: str,
    ) -> BuiltEvent:
        """20 or 21, by who hangs up."""
        build = self.remote_hangup if by == "remote" else self.local_hangup
        return build(call_id, remote=remote, extension=extension, **extra)

    def every_event(self) -> list[BuiltEvent]:
        """One of each documented ssn_event (1, 2, 16-21), for hooks that must take them all."""
        call = self.call_id()
        return [
            self.device_login(),
            self.device_logout(),
            self.incoming(call),
            self.outgoing(),
            self.answered(call),
            self.rejected(self.call_id()),
            self.remote_hangup(call),
            self.local_hangup(self.call_id()),
        ]

    # -- helpers --------------------------------------------------------------------------
    def _call(
        self,
        code: int,
        call_id: str | None,
        number: str,
        ext: str,
        identity: str | None,
        group: str | None,
        ext_id: str | None,
        sender_id: str | None,
        extra: Mapping[str, str],
    ) -> BuiltEvent:
        params: dict[str, str | None] = {
            "sender_id": sender_id,
            "sender_type": "0",
            "call_id": call_id or self.call_id(),
            "ext_id": ext_id,
            "number": number,
            "ext": ext,
            "identity": identity,
            "group": group,
        }
        params.update(extra)
        return self.make(code, **params)

    def _answer(
        self,
        code: int,
        call_id: str,
        direction: Side,
        remote: str,
        extension: str,
        extra: Mapping[str, str],
    ) -> BuiltEvent:
        callee, caller = (extension, remote) if direction == "inbound" else (remote, extension)
        return self._call(code, call_id, callee, caller, None, None, None, USER_ID, extra)
