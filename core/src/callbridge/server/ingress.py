"""``/pbx/events``: where the PBX (or its MySQL trigger) delivers ssn_events.

The ack path is deliberately short, because with the vendor's trigger the PBX's own database
write waits for our answer: authenticate, parse, one durable journal append, answer. No
lookups, no plugin code. Everything else happens later in the dispatcher's threads.

Answers:
- 200 ``ok <seq>``: the event is durable (or was already: ``duplicate <seq>``);
- 400 with a reason: malformed (missing/invalid field, not UTF-8, conflicting repeats); kept
  among rejected requests for inspection, nothing else changes;
- 401/403: missing or wrong token, or a source network that is not allowed;
- 413/415: too large, or a body that is not a form;
- 503: the journal cannot take the write (the PBX should retry). Never a 500 for bad input.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from urllib.parse import parse_qsl

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from .. import metrics
from ..voispeed.events import SECRET_PARAMETERS, EventParseError, parse_event
from .services import Services

log = logging.getLogger("callbridge.ingress")

#: Largest accepted request body or query string, in bytes. A real event is under 1 KiB.
MAX_REQUEST_BYTES = 16 * 1024

_DOC = {
    "parameters": [
        {
            "name": "ssn_event",
            "in": "query",
            "required": True,
            "schema": {"type": "integer"},
            "example": 16,
            "description": "Event code: 1, 2, 16-21 (others are kept as unknown).",
        },
        {
            "name": "token",
            "in": "query",
            "required": True,
            "schema": {"type": "string"},
            "description": "The shared ingress token (CALLBRIDGE_INGRESS_TOKEN).",
        },
        {
            "name": "call_id",
            "in": "query",
            "schema": {"type": "string"},
            "example": "000012A0",
            "description": "User call id (8 hex characters), events 16-21.",
        },
        {"name": "number", "in": "query", "schema": {"type": "string"}, "example": "0612345678"},
        {"name": "ext", "in": "query", "schema": {"type": "string"}, "example": "201"},
        {
            "name": "identity",
            "in": "query",
            "schema": {"type": "string"},
            "example": "Mario|Rossi|Sales|0|0",
        },
    ],
    "responses": {
        "200": {
            "description": "Durable in the journal.",
            "content": {"text/plain": {"example": "ok 42"}},
        },
        "400": {"description": "Malformed event; kept among rejected requests."},
        "401": {"description": "No token."},
        "403": {"description": "Wrong token or source network not allowed."},
        "503": {"description": "Journal unavailable; retry."},
    },
}


def _redact(pairs: list[tuple[str, str]]) -> str:
    """The request as text for the rejected-requests table, secrets replaced."""
    shown = [(k, "***" if k in SECRET_PARAMETERS else v) for k, v in pairs]
    return "&".join(f"{k}={v}" for k, v in shown)[:4096]


class _Refusal(Exception):
    def __init__(self, status: int, reason: str, label: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.label = label


def build_router(services: Services) -> APIRouter:
    """The ingress routes, bound to ``services``."""
    settings = services.settings
    journal = services.journal
    token = settings.ingress_token.get_secret_value().encode() if settings.ingress_token else None
    networks = [ipaddress.ip_network(n, strict=False) for n in settings.server.allowed_networks]
    company_param = settings.pbx.company_param
    notify = getattr(services.engine, "notify", None)
    router = APIRouter(tags=["PBX ingress"])

    def check_source(request: Request) -> None:
        if not networks:
            return
        host = request.client.host if request.client else ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise _Refusal(403, "source address unknown", "network") from None
        if not any(address in net for net in networks):
            raise _Refusal(403, "source network not allowed", "network")

    def check_token(pairs: list[tuple[str, str]]) -> None:
        if token is None:
            return  # only possible with the explicit insecure flag (checked at start-up)
        given = [v for k, v in pairs if k == "token"]
        if not given:
            raise _Refusal(401, "token missing", "token_missing")
        if len(set(given)) != 1 or not hmac.compare_digest(given[0].encode(), token):
            raise _Refusal(403, "token invalid", "token_invalid")

    async def read_pairs(request: Request) -> list[tuple[str, str]]:
        raw = request.scope.get("query_string", b"")
        chunks = [raw] if raw else []
        if request.method == "POST":
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_REQUEST_BYTES:
                    raise _Refusal(413, f"body larger than {MAX_REQUEST_BYTES} bytes", "too_large")
            if body:
                if ctype not in ("application/x-www-form-urlencoded", ""):
                    raise _Refusal(415, "body must be application/x-www-form-urlencoded", "media")
                chunks.append(body)
        if sum(len(c) for c in chunks) > MAX_REQUEST_BYTES:
            raise _Refusal(413, f"request larger than {MAX_REQUEST_BYTES} bytes", "too_large")
        pairs: list[tuple[str, str]] = []
        for chunk in chunks:
            try:
                text = chunk.decode("ascii")
                pairs += parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
            except UnicodeDecodeError:
                raise _Refusal(400, "parameters are not valid UTF-8", "encoding") from None
        return pairs

    async def reject(
        refusal: _Refusal, pairs: list[tuple[str, str]], remote: str | None
    ) -> PlainTextResponse:
        """Count, keep for inspection (secrets removed), answer with the reason."""
        metrics.EVENTS_REJECTED.labels(refusal.label, "http").inc()
        raw = _redact(pairs)
        try:
            await anyio.to_thread.run_sync(
                lambda: journal.record_rejected(
                    raw=raw, reason=refusal.reason, source="http", remote=remote
                )
            )
        except Exception:
            log.exception("could not record a rejected request")  # best effort
        return PlainTextResponse(refusal.reason + "\n", status_code=refusal.status)

    async def pbx_event(request: Request) -> PlainTextResponse:
        """The callback URL to configure in the PBX or its MySQL trigger."""
        started = time.perf_counter()
        pairs: list[tuple[str, str]] = []
        remote = request.client.host if request.client else None
        try:
            check_source(request)
            pairs = await read_pairs(request)
            check_token(pairs)
            try:
                event = parse_event(pairs, company_param=company_param)
            except EventParseError as exc:
                raise _Refusal(400, str(exc), "malformed") from None
        except _Refusal as refusal:
            return await reject(refusal, pairs, remote)
        raw_params = {k: v for k, v in pairs if k not in SECRET_PARAMETERS}
        try:
            result = await anyio.to_thread.run_sync(
                lambda: journal.append_event(event, raw=raw_params, source="http")
            )
        except Exception:
            log.exception("journal append failed")
            metrics.EVENTS_REJECTED.labels("journal", "http").inc()
            return PlainTextResponse("journal unavailable, retry\n", status_code=503)
        if notify is not None and not result.duplicate:
            notify()  # wake the dispatcher now rather than at its next poll
        code = str(event.ssn_event) if event.kind is not None else "unknown"
        metrics.EVENTS_ACCEPTED.labels(code, "http", "yes" if result.duplicate else "no").inc()
        metrics.ACK_LATENCY.observe(time.perf_counter() - started)
        word = "duplicate" if result.duplicate else "ok"
        return PlainTextResponse(f"{word} {result.seq}\n")

    for method in ("GET", "POST"):
        router.add_api_route(
            "/pbx/events",
            pbx_event,
            methods=[method],
            response_class=PlainTextResponse,
            summary=f"Receive one PBX event (ssn_event) by {method}",
            operation_id=f"pbx_event_{method.lower()}",
            openapi_extra=_DOC,
        )
    return router
