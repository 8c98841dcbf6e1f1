"""The VOIspeed SOAP client: one typed method per command, on httpx, with a safe retry rule.

A second CallReq rings a second phone, so a command that changes state must never be sent
twice by accident. The rule, by what the failure proves:

=====================================  ========================  ===========================
failure                                safe commands (1)         acting commands (2)
=====================================  ========================  ===========================
ConnectError, ConnectTimeout,          retried                   retried
PoolTimeout (never reached the PBX)
ReadTimeout, WriteTimeout, ReadError,  retried                   not re-sent:
WriteError, RemoteProtocolError,                                 ``SoapOutcomeUnknown``
5xx without a SOAP Fault
SOAP Fault (any status)                ``SoapFault``             ``SoapFault``
4xx without a Fault                    ``SoapHttpError``         ``SoapHttpError``
2xx that is not SOAP (empty, HTML,     empty: done; else         ``SoapOutcomeUnknown``
``OK``, ``<result>0</result>``)        ``SoapResponseError``
=====================================  ========================  ===========================

Only a Fault or a 4xx is a refusal. A 2xx the client cannot read says the PBX received the
command, not whether it acted: a real PBX (or a proxy before it) may answer ``OK`` or an
HTML page after placing the call, so for an acting command it is as unknown as a read
timeout (reading it as "refused" invites the user to click again and ring a second phone).

(1) Commands whose repetition is harmless: CallHold, CallRetrieve, CallDisconnect,
CallRecStart, CallRecStop (holding a held call or hanging up a finished one changes nothing).
(2) Every other command: CallReq, CallReqExt, CallAccept, CallDivert, CallTransfer, CallPick,
CallDeviceSwitch, and CRUDevent (whose effect the document does not describe, so we assume
the worst).

``SoapOutcomeUnknown`` means the PBX may or may not have acted. The caller must find out from
the PBX itself, e.g. wait for events carrying the external id (CallReq/CallReqExt), rather
than try again. Retries use exponential backoff with jitter, at most
``CALLBRIDGE_PBX__RETRY_ATTEMPTS`` attempts and never sleeping past
``CALLBRIDGE_PBX__RETRY_MAX_SECONDS`` from the first attempt; when they run out the last
failure is raised (``SoapTransportError`` or ``SoapHttpError``).

Connections are not kept alive between commands. With keep-alive, a connection the PBX
closed while idle fails with ``RemoteProtocolError`` before the request is read, which would
make an acting command "unknown" for no reason; a fresh connection per command keeps the
rule honest, and commands are rare enough that the handshake costs nothing that matters.

The password hash is never logged, never in an error, never in ``repr``; fault texts are
scrubbed of it in case the PBX echoes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from ..errors import ConfigurationError
from ..settings import PbxSettings
from ..tls import shared_ssl_context
from . import envelope
from .codes import CallableType, CrudAction, CrudEntityType, GatewayType
from .envelope import (
    MASK,
    CallReqResult,
    PbxError,
    SoapFault,
    SoapRequest,
    SoapResponseError,
    SoapResult,
    build_envelope,
)

log = logging.getLogger(__name__)

#: Commands that may be re-sent after a failure that does not prove the PBX never saw them.
SAFE_TO_REPEAT: Final = frozenset(
    {"CallHold", "CallRetrieve", "CallDisconnect", "CallRecStart", "CallRecStop"}
)
#: The largest answer we read; a SOAP response to one command is a few hundred bytes.
MAX_RESPONSE_BYTES: Final = 1 << 20
CONTENT_TYPE: Final = "text/xml; charset=utf-8"

#: httpx failures that prove the request never left: no connection was made.
_NEVER_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: httpx failures after the request may have been (partly) delivered.
_MAYBE_SENT: Final = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


class SoapHttpError(PbxError):
    """The PBX answered with an HTTP error status and no SOAP Fault."""

    def __init__(self, command: str, status: int) -> None:
        super().__init__(f"{command}: the PBX answered HTTP {status}")
        self.command = command
        self.status = status


class SoapTransportError(PbxError):
    """The PBX could not be reached (or, for a safe command, kept failing) within the bounds."""

    def __init__(self, command: str, reason: str) -> None:
        super().__init__(f"{command}: {reason}")
        self.command = command
        self.reason = reason


class SoapOutcomeUnknown(PbxError):
    """An acting command may have reached the PBX, but no answer says what happened.

    It was not re-sent. Check the call's state (events carrying ``external_id``) before
    trying again: a blind retry of CallReq rings a second phone.
    """

    def __init__(
        self, command: str, reason: str, *, external_id: str | None, status: int | None = None
    ) -> None:
        hint = f" (external id {external_id})" if external_id else ""
        super().__init__(f"{command}{hint}: {reason}; the PBX may have acted, it was not re-sent")
        self.command = command
        self.reason = reason
        self.external_id = external_id
        self.status = status


class _Retry(Exception):
    """Internal: this attempt failed in a way the rule allows retrying; ``final`` if not."""

    def __init__(self, final: PbxError) -> None:
        super().__init__(str(final))
        self.final = final


def _describe(exc: httpx.HTTPError) -> str:
    detail = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {detail}" if detail else name


def pbx_http_client(
    settings: PbxSettings, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """The HTTP client both dialects' clients use: the settings' timeouts, no keep-alive
    (see the module's docstring), no redirects."""
    return httpx.Client(
        transport=transport,
        verify=shared_ssl_context(),  # one CA bundle in memory, not one per company's client
        timeout=httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.read_timeout,
            pool=settings.connect_timeout,
        ),
        limits=httpx.Limits(max_keepalive_connections=0),
        follow_redirects=False,
    )


class SoapClient:
    """Sends the document's SOAP commands to the PBX at ``settings.soap_url``.

    Thread-safe (one httpx client underneath). ``transport`` replaces the network for tests
    or proxies; ``sleep`` replaces ``time.sleep`` between retries; ``backoff_initial`` and
    ``backoff_max`` bound the exponential backoff (seconds). Use as a context manager or call
    ``close()``.
    """

    def __init__(
        self,
        settings: PbxSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_initial: float = 0.25,
        backoff_max: float = 5.0,
    ) -> None:
        envelope.check_settings(settings)
        url = urlsplit(settings.soap_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigurationError(
                f"CALLBRIDGE_PBX__SOAP_URL: expected an http(s) URL, got {settings.soap_url!r:.80}"
            )
        self._settings = settings
        self._sleep = sleep
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._http = pbx_http_client(settings, transport)

    def __repr__(self) -> str:
        return f"SoapClient(url={self._settings.soap_url!r}, user={self._settings.user!r})"

    def __enter__(self) -> SoapClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the HTTP connections."""
        self._http.close()

    # --- the commands ----------------------------------------------------------------------

    def call_req(
        self,
        user: str,
        number: str,
        device_id: str | int | None = None,
        external_id: str | None = None,
    ) -> CallReqResult:
        """CallReq: ``user`` calls ``number``. Returns the external id sent (generated if None)."""
        return self._call(envelope.call_req(user, number, device_id, external_id))

    def call_req_ext(
        self,
        user: str,
        *,
        calling_id: str | int,
        called_id: str | int,
        calling_type: CallableType | int,
        called_type: CallableType | int,
        calling_number: str = "",
        called_number: str = "",
        device_id: str | int | None = None,
        external_id: str | None = None,
        record: bool = False,
    ) -> CallReqResult:
        """CallReqExt: a call between any two callable entities; returns the external id."""
        return self._call(
            envelope.call_req_ext(
                user,
                calling_id=calling_id,
                called_id=called_id,
                calling_type=calling_type,
                called_type=called_type,
                calling_number=calling_number,
                called_number=called_number,
                device_id=device_id,
                external_id=external_id,
                record=record,
            )
        )

    def call_accept(self, user: str, user_call_id: str | int) -> SoapResult:
        """CallAccept: answer a ringing call."""
        return self.send(envelope.call_accept(user, user_call_id))

    def call_hold(self, user: str, user_call_id: str | int) -> SoapResult:
        """CallHold: put a call on hold."""
        return self.send(envelope.call_hold(user, user_call_id))

    def call_retrieve(self, user: str, user_call_id: str | int) -> SoapResult:
        """CallRetrieve: take a call off hold."""
        return self.send(envelope.call_retrieve(user, user_call_id))

    def call_divert(self, user: str, user_call_id: str | int, recipient: str) -> SoapResult:
        """CallDivert: send a call to another extension."""
        return self.send(envelope.call_divert(user, user_call_id, recipient))

    def call_transfer(
        self, user: str, from_call_id: str | int, to_call_id: str | int
    ) -> SoapResult:
        """CallTransfer: join ``from_call_id`` to ``to_call_id``."""
        return self.send(envelope.call_transfer(user, from_call_id, to_call_id))

    def call_disconnect(self, user: str, user_call_id: str | int) -> SoapResult:
        """CallDisconnect: hang up a call."""
        return self.send(envelope.call_disconnect(user, user_call_id))

    def call_device_switch(
        self, user: str, user_call_id: str | int, device_id: str | int
    ) -> SoapResult:
        """CallDeviceSwitch: move a running call to another device."""
        return self.send(envelope.call_device_switch(user, user_call_id, device_id))

    def call_pick(self, user: str, number: str, device_id: str | int) -> SoapResult:
        """CallPick: pick up a call ringing on extension ``number``."""
        return self.send(envelope.call_pick(user, number, device_id))

    def call_rec_start(self, user: str, user_call_id: str | int) -> SoapResult:
        """CallRecStart: start recording a call."""
        return self.send(envelope.call_rec_start(user, user_call_id))

    def call_rec_stop(self, user: str, user_call_id: str | int) -> SoapResult:
        """CallRecStop: stop recording a call."""
        return self.send(envelope.call_rec_stop(user, user_call_id))

    def crud_event(
        self,
        action: CrudAction | int,
        entity_type: CrudEntityType | int,
        entity_subtype: GatewayType | int | None,
        entity_id: str | int,
    ) -> SoapResult:
        """CRUDevent: tell the PBX to act on one of its entities."""
        return self.send(envelope.crud_event(action, entity_type, entity_subtype, entity_id))

    # --- sending ---------------------------------------------------------------------------

    def _call(self, request: SoapRequest) -> CallReqResult:
        result = self.send(request)
        return CallReqResult(
            result.command, result.values, result.response_element, request.external_id or ""
        )

    def send(self, request: SoapRequest) -> SoapResult:
        """Send one prepared request under the retry rule of this module."""
        body = build_envelope(self._settings, request.command, request.fields)
        headers = {
            "Content-Type": CONTENT_TYPE,
            "SOAPAction": envelope.soap_action(self._settings, request.command),
        }
        retrying = Retrying(
            stop=stop_after_attempt(self._settings.retry_attempts)
            | stop_before_delay(self._settings.retry_max_seconds),
            # Exponential backoff plus up to one initial step of random jitter.
            wait=wait_exponential(multiplier=self._backoff_initial, max=self._backoff_max)
            + wait_random(0, self._backoff_initial),
            retry=retry_if_exception_type(_Retry),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, request, body, headers)
        except _Retry as exc:
            raise exc.final from None

    def _log_retry(self, state: RetryCallState) -> None:
        outcome = state.outcome
        reason = str(outcome.exception()) if outcome is not None else "?"
        log.warning("PBX command failed, retrying (attempt %d): %s", state.attempt_number, reason)

    def _attempt(self, request: SoapRequest, body: bytes, headers: dict[str, str]) -> SoapResult:
        command = request.command
        safe = command in SAFE_TO_REPEAT
        try:
            status, content = self._post(body, headers)
        except _NEVER_SENT as exc:
            raise _Retry(
                SoapTransportError(command, f"cannot reach the PBX ({_describe(exc)})")
            ) from None
        except _MAYBE_SENT as exc:
            reason = f"no answer from the PBX ({_describe(exc)})"
            if safe:
                raise _Retry(SoapTransportError(command, reason)) from None
            raise SoapOutcomeUnknown(command, reason, external_id=request.external_id) from None
        except httpx.HTTPError as exc:
            raise SoapTransportError(command, _describe(exc)) from None

        fault: SoapFault | None = None
        result: SoapResult | None = None
        try:
            result = envelope.parse_response(command, content)
        except SoapFault as exc:
            fault = self._scrub(exc)
        except SoapResponseError as exc:
            if status < 300 and not safe:
                raise SoapOutcomeUnknown(
                    command,
                    f"the PBX answered HTTP {status} with something that is not a SOAP answer"
                    f" ({exc})",
                    external_id=request.external_id,
                    status=status,
                ) from None
            if status < 400:
                raise
        if fault is None and status < 300 and not safe and not content.strip():
            raise SoapOutcomeUnknown(
                command,
                f"the PBX answered HTTP {status} with an empty body, not a SOAP answer",
                external_id=request.external_id,
                status=status,
            )
        if fault is not None:
            raise fault
        if status >= 500:
            if safe:
                raise _Retry(SoapHttpError(command, status))
            raise SoapOutcomeUnknown(
                command,
                f"the PBX answered HTTP {status}",
                external_id=request.external_id,
                status=status,
            )
        if status >= 300:
            raise SoapHttpError(command, status)
        assert result is not None
        log.info("PBX command %s done", command)
        return result

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST the envelope; read at most MAX_RESPONSE_BYTES of the answer."""
        with self._http.stream(
            "POST", self._settings.soap_url, content=body, headers=headers
        ) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise SoapResponseError(
                        f"the PBX's answer is larger than {MAX_RESPONSE_BYTES} bytes"
                    )
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)

    def _scrub(self, fault: SoapFault) -> SoapFault:
        """Remove the password hash from a fault the PBX might have echoed it in."""
        secret = (self._settings.password_hash() or "").lower()
        if secret and (secret in fault.code.lower() or secret in fault.text.lower()):
            return SoapFault(_mask(fault.code, secret), _mask(fault.text, secret))
        return fault


def _mask(text: str, secret: str) -> str:
    lowered = text.lower()
    out = []
    start = 0
    while (index := lowered.find(secret, start)) >= 0:
        out.append(text[start:index])
        out.append(MASK)
        start = index + len(secret)
    out.append(text[start:])
    return "".join(out)
