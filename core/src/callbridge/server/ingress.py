"""``/pbx/events``: where the PBX (or its MySQL trigger) delivers ssn_events.

The ack path is deliberately short, because with the vendor's trigger the PBX's own database
write waits for our answer: check the source and token, parse, one durable journal append,
answer. No lookups, no plugin code. Everything else happens later in the engine's threads.

It is a plain ASGI endpoint rather than a FastAPI route: the PBX's callback needs none of
FastAPI's dependency injection or validation, and skipping them roughly halves the CPU spent
per event. Its OpenAPI description is added to the app's document by
``ingress_openapi.openapi_paths()``.

Answers:
- 200 ``ok <seq>``: the event is durable (or was already: ``duplicate <seq>``);
- 202 ``nudged``: a MySQL trigger in sys_exec mode announced an outbox row (``outbox_id``);
  the MySQL source reads it (never while the PBX waits: its transaction is still open);
- 409 when no MySQL source runs here to take that nudge (logged once a minute);
- 400 with a reason: malformed (missing/invalid field, conflicting repeats); kept among
  rejected requests for inspection, nothing else changes;
- 401/403: missing or wrong token, or a source network that is not allowed;
- 405/413/415: wrong method, too large, or a body that is not a form;
- 503: the journal cannot take the write (the PBX should retry). Never a 500 for bad input.

The same endpoint answers at ``/pbx/seri``, and both take VOIspeed's integration module's
dialect: a request with ``event_name`` (and no ``ssn_event``) is read as the document's event
by ``voispeed.seri.to_document`` (pure, no I/O) and then goes the same way.

Text need not be UTF-8: a parameter whose escapes (or raw bytes; see ``http_protocol``) are
not UTF-8 is read as cp1252, else latin-1, kept as received in ``cb_raw_<name>`` and counted
(``callbridge_ingress_charset_fallback_total``): a latin1 caller name must not lose the call.

Refused requests cost a bounded amount, since anyone who reaches the port can send them: at
most ``server.rejected_per_minute`` are kept per source address (an IPv6 /64 counts as one)
and ten times that for all sources together; the rest get the same answer and are only
counted (``callbridge_rejected_unrecorded_total``). Only an authenticated request refused as
malformed (the PBX's own event that we could not read) is kept with a durable write: it is
evidence of an event we did not take. Anything refused before the token check is kept
without an fsync: losing the last few in a power cut loses nothing, and a flood of them
must not queue fsyncs in front of the PBX's acknowledgements.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote_from_bytes, unquote_to_bytes

from .. import metrics
from ..companies.registry import DEFAULT, Company
from ..faults import FaultLog, journal_fault
from ..voispeed.events import SECRET_PARAMETERS, AnyEvent, EventParseError, parse_event
from ..voispeed.seri import is_seri, to_document
from .ingress_companies import Refusal as _Refusal
from .ingress_companies import check_token, company_of, own_company
from .services import Services

log = logging.getLogger("callbridge.ingress")
#: Seconds of successful appends before a journal fault is logged as over (a nearly full
#: disk takes one write and fails the next: one pair of lines per flip otherwise).
_FAULT_SETTLE = 10.0

T = TypeVar("T")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PATH = "/pbx/events"
#: The same endpoint under the name of VOIspeed's integration module (``voispeed.seri``);
#: both paths take both dialects, a request naming ``event_name`` is read as SERI.
SERI_PATH = "/pbx/seri"
PATHS = frozenset({PATH, SERI_PATH})
#: Largest accepted request body or query string, in bytes. A real event is under 1 KiB.
MAX_REQUEST_BYTES = 16 * 1024


#: Source addresses whose rejection budget is remembered (least recently seen forgotten first).
_MAX_SOURCES = 10_000


class RejectLimiter:
    """Token buckets: how many refused requests are kept, per source and for all sources.

    Each source gets ``per_minute`` tokens a minute and may hold a minute's worth; all sources
    together get ten times that. Keeping a record takes a token from both; without one, the
    request is only counted. Forgetting a source (beyond ``_MAX_SOURCES``) gives it a fresh
    bucket, which the shared one still bounds.
    """

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(per_minute)
        self._clock = clock
        self._lock = threading.Lock()
        #: source -> (tokens, time of the last refill, refusals since the last record)
        self._buckets: OrderedDict[str, tuple[float, float, int]] = OrderedDict()
        self._shared = (self._burst * 10, clock())

    @property
    def per_minute(self) -> int:
        """Records kept per source and minute."""
        return int(self._burst)

    @staticmethod
    def source_key(remote: str | None) -> str:
        """The bucket of an address: itself for IPv4, its /64 for IPv6 (one host's range)."""
        try:
            address = ipaddress.ip_address(remote or "")
        except ValueError:
            return remote or "-"
        if address.version == 6:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return str(address)

    def allow(self, remote: str | None) -> tuple[bool, int]:
        """(keep a record?, refusals not kept from this source since its last record)."""
        if self._burst <= 0:
            return False, 0
        key = self.source_key(remote)
        now = self._clock()
        with self._lock:
            tokens, then, skipped = self._buckets.pop(key, (self._burst, now, 0))
            tokens = min(self._burst, tokens + (now - then) * self._rate)
            shared, shared_then = self._shared
            shared = min(self._burst * 10, shared + (now - shared_then) * self._rate * 10)
            keep = tokens >= 1.0 and shared >= 1.0
            if keep:
                tokens -= 1.0
                shared -= 1.0
                skipped = 0
            else:
                skipped += 1
            self._buckets[key] = (tokens, now, skipped)
            self._shared = (shared, now)
            while len(self._buckets) > _MAX_SOURCES:
                self._buckets.popitem(last=False)
        return keep, skipped


class _AckBridge:
    """Hands the journal writer's results to the event loop: one wake-up per batch.

    ``asyncio.wrap_future`` schedules one thread-safe callback per future, so each event
    costs the loop a wake-up from the writer thread; under load a group commit resolves
    dozens of futures at once. Here the writer thread queues them and wakes the loop only if
    it is not already going to look, and the loop resolves everything queued in one go.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._ready: list[tuple[asyncio.Future[Any], Future[Any]]] = []
        self._scheduled = False

    def wait(self, future: Future[T]) -> asyncio.Future[T]:
        """An asyncio future with ``future``'s outcome (call on the loop's thread)."""
        waiter: asyncio.Future[T] = self.loop.create_future()
        future.add_done_callback(lambda done: self._done(waiter, done))
        return waiter

    def _done(self, waiter: asyncio.Future[Any], done: Future[Any]) -> None:
        with self._lock:
            self._ready.append((waiter, done))
            if self._scheduled:
                return
            self._scheduled = True
        self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
            self._scheduled = False
        for waiter, done in ready:
            if waiter.done():
                continue  # the request was cancelled (client gone)
            error = done.exception()
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(done.result())


#: Characters left as they are in a ``cb_raw_<name>`` value (the rest is percent-escaped).
_RAW_SAFE = "|@:/,;'() "


def _lenient_text(raw: bytes) -> tuple[str, str]:
    """(text, charset): UTF-8 if the bytes are UTF-8, else cp1252, else latin-1.

    A PBX trigger that concatenates names into a URL sends them in the database's charset,
    often latin1 (MySQL's latin1 is cp1252). Any byte string decodes as latin-1, so this
    never fails; UTF-8 comes first because text in another charset is rarely valid UTF-8.
    """
    for charset in ("utf-8", "cp1252"):
        try:
            return raw.decode(charset), charset
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1"), "latin-1"


def _lenient_pairs(chunk: bytes) -> list[tuple[str, str]]:
    """Form pairs whose escapes (or raw bytes) are not all UTF-8: each decoded on its own.

    ``parse_qsl`` decodes a whole query with one charset; here one latin1 name must not
    decide how the other parameters read. A value that needed a fallback charset is kept as
    received beside it, as ``cb_raw_<name>`` (percent-escaped bytes), and counted.
    """
    pairs: list[tuple[str, str]] = []
    for field in chunk.split(b"&"):
        if not field:
            continue
        name_raw, _, value_raw = field.partition(b"=")
        name, _ = _lenient_text(unquote_to_bytes(name_raw.replace(b"+", b" ")))
        raw = unquote_to_bytes(value_raw.replace(b"+", b" "))
        value, charset = _lenient_text(raw)
        pairs.append((name, value))
        if charset != "utf-8":
            metrics.INGRESS_CHARSET_FALLBACK.labels(charset).inc()
            pairs.append((f"cb_raw_{name}", quote_from_bytes(raw, safe=_RAW_SAFE)))
    return pairs


def _redact(pairs: list[tuple[str, str]]) -> str:
    """The request as text for the rejected-requests table, secrets replaced."""
    shown = [(k, "***" if k in SECRET_PARAMETERS else v) for k, v in pairs]
    return "&".join(f"{k}={v}" for k, v in shown)[:4096]


async def _answer(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Ingress:
    """The ASGI endpoint, bound to the service's journal and settings."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        self._journal = services.journal
        #: A failing journal is logged once a minute, with its fix, not once per 503.
        self._faults = FaultLog(log)
        self._journal_failing = False
        token = settings.ingress_token
        self._token = token.get_secret_value().encode() if token is not None else None
        self._networks = [
            ipaddress.ip_network(n, strict=False) for n in settings.server.allowed_networks
        ]
        self._company_param = settings.pbx.company_param
        self._services = services
        self._seri_names = settings.pbx.seri
        seri_token = settings.pbx.seri_token
        #: A SERI event may carry the module's own token beside ours (see ``check_token``).
        self._seri_token = seri_token.get_secret_value().encode() if seri_token else None
        engine = services.engine
        self._wake: Callable[[], None] | None = engine.wake if engine is not None else None
        self._sources = services.sources
        self._unsourced_logged = float("-inf")
        self._limiter = RejectLimiter(settings.server.rejected_per_minute)
        self._bridge: _AckBridge | None = None
        self._wake_pending = False

    def _acks(self) -> _AckBridge:
        """The bridge for the running loop (tests may run the app on more than one)."""
        loop = asyncio.get_running_loop()
        if self._bridge is None or self._bridge.loop is not loop:
            self._bridge = _AckBridge(loop)
            self._wake_pending = False  # a wake-up scheduled on a closed loop never ran
        return self._bridge

    def _wake_engine(self) -> None:
        """Wake the dispatcher once per loop pass, however many events that pass acked."""
        if self._wake is None or self._wake_pending:
            return
        self._wake_pending = True
        asyncio.get_running_loop().call_soon(self._ring)

    def _ring(self) -> None:
        self._wake_pending = False
        if self._wake is not None:
            self._wake()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        client = scope.get("client")
        remote = client[0] if client else None
        pairs: list[tuple[str, str]] = []
        #: Known once the token is checked: a refused request after that is the company's.
        owner: str | None = None
        try:
            if scope["method"] not in ("GET", "POST"):
                raise _Refusal(405, "use GET or POST", "method")
            self._check_source(remote)
            pairs = await self._read_pairs(scope, receive)
            seri = is_seri(pairs, self._seri_names)
            company = self._company(pairs, seri)
            owner = company.name
            if any(k == "outbox_id" for k, _ in pairs) and not any(
                k == "ssn_event" for k, _ in pairs
            ):
                await self._nudge(pairs, send)
                return
            pairs, event = self._parse(pairs, company, seri)
        except _Refusal as refusal:
            await self._reject(refusal, pairs, remote, send, company=owner)
            return
        raw = {k: v for k, v in pairs if k not in SECRET_PARAMETERS}
        try:
            result = await self._acks().wait(
                self._journal.submit_event(event, raw=raw, source="http")
            )
        except Exception as exc:
            self._journal_failing = True
            self._faults.report(
                "journal",
                f"{journal_fault(self._journal, exc)}; answering 503 (the PBX retries)",
                exc,
            )
            metrics.EVENTS_REJECTED.labels("journal", "http").inc()
            await _answer(send, 503, "journal unavailable, retry\n")
            return
        if self._journal_failing and self._faults.clear(
            "journal", "journal writable again; events accepted", settle=_FAULT_SETTLE
        ):
            self._journal_failing = False
        if not result.duplicate:
            self._wake_engine()  # now rather than at the dispatcher's next poll
        await _answer(send, 200, f"{'duplicate' if result.duplicate else 'ok'} {result.seq}\n")
        code = str(event.ssn_event) if event.kind is not None else "unknown"
        if seri:
            code = f"seri:{event.ssn_event}" if event.kind is not None else "seri:unknown"
        metrics.EVENTS_ACCEPTED.labels(code, "http", "yes" if result.duplicate else "no").inc()
        metrics.COMPANY_EVENTS.labels(
            event.company or "default", "duplicate" if result.duplicate else "accepted"
        ).inc()
        metrics.ACK_LATENCY.observe(time.perf_counter() - started)

    def _company(self, pairs: list[tuple[str, str]], seri: bool) -> Company:
        """The token checked; the company it names (``default`` without a companies file)."""
        companies = self._services.companies  # read each time: a reload swaps it
        if companies.single:
            check_token(pairs, self._token, self._seri_token if seri else None)
            return companies.get(DEFAULT)
        return company_of(companies, pairs, seri, self._company_param)

    def _parse(
        self, pairs: list[tuple[str, str]], company: Company, seri: bool
    ) -> tuple[list[tuple[str, str]], AnyEvent]:
        """The parameters as the document names them, and the typed event of ``company``
        (400 when malformed, 403 for another company's id)."""
        try:
            if seri:  # the integration module's dialect: read as the document's
                pairs = list(to_document(pairs, self._seri_names).items())
            event = parse_event(
                own_company(pairs, company, self._company_param),
                company_param=self._company_param,
                company=company.name,
            )
        except EventParseError as exc:
            raise _Refusal(400, str(exc), "malformed") from None
        return pairs, event

    def _check_source(self, remote: str | None) -> None:
        if not self._networks:
            return
        try:
            address = ipaddress.ip_address(remote or "")
        except ValueError:
            raise _Refusal(403, "source address unknown", "network") from None
        if not any(address in net for net in self._networks):
            raise _Refusal(403, "source network not allowed", "network")

    @staticmethod
    async def _read_pairs(scope: Scope, receive: Receive) -> list[tuple[str, str]]:
        query: bytes = scope.get("query_string", b"")
        chunks = [query] if query else []
        if scope["method"] == "POST":
            headers = dict(scope.get("headers", []))
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > MAX_REQUEST_BYTES:
                    raise _Refusal(413, f"body larger than {MAX_REQUEST_BYTES} bytes", "too_large")
            if body:
                if ctype not in (b"application/x-www-form-urlencoded", b""):
                    raise _Refusal(415, "body must be application/x-www-form-urlencoded", "media")
                chunks.append(body)
        if sum(len(c) for c in chunks) > MAX_REQUEST_BYTES:
            raise _Refusal(413, f"request larger than {MAX_REQUEST_BYTES} bytes", "too_large")
        pairs: list[tuple[str, str]] = []
        for chunk in chunks:
            try:
                # UTF-8, not ASCII: ``curl -d`` sends a caller's accented name unencoded.
                text = chunk.decode("utf-8")
                pairs += parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
            except UnicodeDecodeError:
                pairs += _lenient_pairs(chunk)  # not all UTF-8: decide parameter by parameter
        return pairs

    async def _nudge(self, pairs: list[tuple[str, str]], send: Send) -> None:
        """sys_exec mode: the trigger announced an outbox row. Wake the source, answer at once.

        The row is not visible yet (the PBX's transaction waits for this answer), so we never
        read it here; the MySQL source picks it up as soon as the PBX commits.
        """
        ids = {v for k, v in pairs if k == "outbox_id"}
        if len(ids) != 1 or not next(iter(ids)).isdigit():
            raise _Refusal(400, "outbox_id: expected one integer", "malformed")
        if not self._sources:
            now = time.monotonic()
            if now - self._unsourced_logged >= 60:
                self._unsourced_logged = now
                log.warning(
                    "a sys_exec trigger nudged /pbx/events but no MySQL source runs here: set "
                    "CALLBRIDGE_SOURCE=mysql://... or the events stay in the outbox"
                    " (logged once a minute)"
                )
            await _answer(send, 409, "no MySQL source configured (CALLBRIDGE_SOURCE)\n")
            return
        for source in self._sources:
            source.nudge()
        await _answer(send, 202, "nudged\n")

    async def _reject(
        self,
        refusal: _Refusal,
        pairs: list[tuple[str, str]],
        remote: str | None,
        send: Send,
        *,
        company: str | None,
    ) -> None:
        """Count, keep for inspection within the limit (secrets removed), answer the reason.

        ``company``: the token's company, once the token was checked (None: a stranger's)."""
        metrics.EVENTS_REJECTED.labels(refusal.label, "http").inc()
        keep, skipped = self._limiter.allow(remote)
        if not keep:
            metrics.REJECTED_UNRECORDED.labels(refusal.label).inc()
            if skipped == 1:  # once per run of refusals over the limit, not once per request
                log.warning(
                    "refused requests from %s are over the limit of %d a minute: "
                    "counted, no longer kept",
                    remote,
                    self._limiter.per_minute,
                )
            await _answer(send, refusal.status, refusal.reason + "\n")
            return
        raw = _redact(pairs)
        journal = self._journal
        record = journal.record_rejected if company is not None else journal.record_rejected_fast
        try:
            await asyncio.to_thread(
                record,
                raw=raw,
                reason=refusal.reason,
                source="http",
                remote=remote,
                # Whose it is: the token's company once the token was checked; a stranger's
                # request is nobody's (and in no company's export).
                company=company,
            )
        except Exception as exc:  # best effort
            self._faults.report(
                "rejected",
                f"could not record a rejected request: {journal_fault(self._journal, exc)}",
                exc,
            )
        await _answer(send, refusal.status, refusal.reason + "\n")
