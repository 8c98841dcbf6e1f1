"""The client of VOIspeed's integration module: ``seri_endpoint.php?service=...``, on httpx.

Same never-ring-twice rule as the SOAP client (``voispeed.soap``), by what a failure proves:

- no connection made (``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``): the PBX never
  saw the request, so it is retried, with backoff, within ``CALLBRIDGE_PBX__RETRY_*``;
- an answer lost or unreadable after the request left (read timeout, reset, a 5xx, a 2xx
  that is not the XML with an ``<outcome>``): for ``call_request`` the PBX may have placed
  the call, so it is *not* re-sent (``SeriOutcomeUnknown``, a ``SoapOutcomeUnknown``: the
  click-to-call becomes ``unconfirmed``); a read-only service is retried;
- a 4xx, or an ``<outcome>`` other than 0: the PBX refused (``SeriRefused``).

The token travels in the query string, as the module wants: it is never logged (httpx's own
request log is kept at WARNING by ``callbridge.logs``), never in an error, never in ``repr``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import httpx

from ..errors import ConfigurationError
from ..settings import PbxSettings
from .envelope import PbxError
from .seri import SeriAnswer, SeriAnswerError, parse_answer
from .soap import SoapOutcomeUnknown, SoapTransportError, pbx_http_client

log = logging.getLogger(__name__)

#: The largest answer read; a real one is a few hundred bytes.
MAX_ANSWER_BYTES: Final = 1 << 20
_NEVER_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class SeriRefused(PbxError):
    """The PBX answered that it will not do it: an HTTP 4xx or a non-zero ``<outcome>``."""

    def __init__(self, service: str, reason: str, *, status: int | None = None) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason
        self.status = status


class SeriOutcomeUnknown(SoapOutcomeUnknown):
    """``call_request`` may have reached the PBX, but no readable answer says what happened."""


@dataclass(frozen=True)
class CallRequestResult:
    """A ``call_request`` the PBX accepted: our external id and the PBX's ``request_id``."""

    external_id: str
    request_id: str | None
    answer: SeriAnswer


class SeriClient:
    """Sends the module's services to ``settings.seri_url`` with ``settings.seri_token``.

    Thread-safe (one httpx client). ``transport`` replaces the network (tests); ``sleep``
    replaces ``time.sleep`` between retries. ``dialect`` is ``"seri"``: the click-to-call
    route asks a client which one it is.
    """

    dialect: Final = "seri"

    def __init__(
        self,
        settings: PbxSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_initial: float = 0.25,
    ) -> None:
        url = urlsplit(settings.seri_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigurationError(
                f"CALLBRIDGE_PBX__SERI_URL: expected an http(s) URL, got {settings.seri_url!r:.80}"
            )
        if settings.seri_token is None or not settings.seri_token.get_secret_value():
            raise ConfigurationError(
                "CALLBRIDGE_PBX__SERI_TOKEN is not set: the integration module's token "
                "(Comandi abilitati) is needed to send commands"
            )
        self._settings = settings
        self._names = settings.seri
        self._sleep = sleep
        self._backoff = backoff_initial
        self._http = pbx_http_client(settings, transport)

    def __repr__(self) -> str:
        return f"SeriClient(url={self._settings.seri_url!r}, token=**********)"

    def __enter__(self) -> SeriClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the HTTP connections."""
        self._http.close()

    # --- services --------------------------------------------------------------------------

    def call_request(
        self,
        extension: str,
        number: str,
        *,
        external_id: str,
        device: str | None = None,
    ) -> CallRequestResult:
        """``call_request``: ring ``extension``, then call ``number``; ``extid`` = our id."""
        params = {"ext": extension, "number": number, "extid": external_id}
        if device:
            params["device"] = device
        answer = self._send(self._names.call_request, params, acting=True, ref=external_id)
        return CallRequestResult(external_id, answer.request_id, answer)

    def user_call_report(self, extension: str | None = None) -> SeriAnswer:
        """``get_user_call_report``: read-only; ``callbridge pbx check`` tests the token with it."""
        params = {"ext": extension} if extension else {}
        return self._send(self._names.user_call_report, params, acting=False, ref=None)

    # --- sending ---------------------------------------------------------------------------

    def _query(self, service: str, params: dict[str, str]) -> dict[str, str]:
        token = self._settings.seri_token
        assert token is not None  # checked in __init__
        query = {self._names.service_param: service, "token": token.get_secret_value()}
        query.update(params)
        if self._names.domain:
            query["domain"] = self._names.domain
        return query

    def _send(
        self, service: str, params: dict[str, str], *, acting: bool, ref: str | None
    ) -> SeriAnswer:
        """One service under the rule of this module's docstring."""
        query = self._query(service, params)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(service, query, acting=acting, ref=ref)
            except _Retry as retry:
                settings = self._settings
                elapsed = time.monotonic() - started
                if attempt >= settings.retry_attempts or elapsed >= settings.retry_max_seconds:
                    raise retry.final from None
                delay = self._backoff * 2 ** (attempt - 1) + random.uniform(0, self._backoff)
                log.warning(
                    "PBX service %s failed, retrying (attempt %d): %s", service, attempt, retry
                )
                self._sleep(delay)

    def _attempt(
        self, service: str, query: dict[str, str], *, acting: bool, ref: str | None
    ) -> SeriAnswer:
        def unknown(reason: str, status: int | None = None) -> PbxError:
            if acting:
                return SeriOutcomeUnknown(service, reason, external_id=ref, status=status)
            return SoapTransportError(service, reason)

        try:
            status, content = self._get(query)
        except _NEVER_SENT as exc:
            reason = f"cannot reach the PBX ({_name(exc, query['token'])})"
            raise _Retry(SoapTransportError(service, reason)) from None
        except httpx.HTTPError as exc:  # the request may have left: read errors, resets
            error = unknown(f"no answer from the PBX ({_name(exc, query['token'])})")
            if acting:
                raise error from None
            raise _Retry(error) from None
        if status >= 500:
            error = unknown(f"the PBX answered HTTP {status}", status)
            if acting:
                raise error
            raise _Retry(error)
        if status >= 300:
            raise SeriRefused(service, f"the PBX answered HTTP {status}", status=status)
        try:
            answer = parse_answer(content, self._names)
        except SeriAnswerError as exc:
            raise unknown(f"the PBX answered HTTP {status} with {exc}", status) from None
        if not answer.ok:
            raise SeriRefused(service, answer.error, status=status)
        log.info("PBX service %s done", service)
        return answer

    def _get(self, query: dict[str, str]) -> tuple[int, bytes]:
        with self._http.stream("GET", self._settings.seri_url, params=query) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    return response.status_code, b""  # unreadable: as an unknown answer
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)


class _Retry(Exception):
    """Internal: this attempt failed in a way that may be retried; ``final`` if not."""

    def __init__(self, final: PbxError) -> None:
        super().__init__(str(final))
        self.final = final


def _name(exc: httpx.HTTPError, secret: str) -> str:
    """The failure as text, the token masked should the exception quote the URL."""
    detail = str(exc).strip()
    if secret:
        detail = detail.replace(secret, "**********")
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
