"""Where the simulator's events go: one interface, several ways to deliver.

The engine only ever calls ``EventSink.emit(params)`` with the parameters of one ssn_event,
as the document lists them. How they travel is the sink's business:

- ``HttpSink`` does what the vendor's MySQL trigger does with curl: a GET with a query string
  to the callback URL. It retries only when the request provably never got an answer
  (connection errors) or the receiver said it failed (5xx); a 2xx is done and a 4xx is a
  permanent "no" that is logged, recorded and not retried, like the trigger would. Its
  ``text`` says how non-ASCII text travels: percent-escaped UTF-8 (``utf-8``, what a careful
  client sends), percent-escaped latin1 (``latin1``: ``Nicol%F2``, a trigger on a latin1
  database), or the raw bytes in the request line (``utf8-raw``, ``latin1-raw``: a trigger
  that pastes names into a curl URL). The raw forms go over a plain socket: no HTTP client
  library sends them.
- ``MemorySink`` keeps them in a list, for tests.
- ``QueuedSink`` wraps another sink and delivers on one background thread, in order, so the
  engine (and a SOAP request that caused the event) never waits on the receiver. Without it
  a receiver that calls the simulator's SOAP API while handling an event could deadlock.

A later step adds a sink that writes the monitor_* rows into MariaDB instead.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

import httpx
from pydantic import SecretStr

log = logging.getLogger(__name__)


@runtime_checkable
class EventSink(Protocol):
    """Receives every event the simulated PBX emits, as ``{parameter: value}``."""

    def emit(self, params: dict[str, str]) -> None:
        """Deliver one event. Must not raise for delivery failures: record them instead."""

    def close(self) -> None:
        """Release resources; no emit follows."""


class MemorySink:
    """Keeps every event in memory, in order. Thread-safe; ``wait_for`` polls with a timeout."""

    def __init__(self) -> None:
        self._events: list[dict[str, str]] = []
        self._cond = threading.Condition()

    def emit(self, params: dict[str, str]) -> None:
        """Store a copy of the event."""
        with self._cond:
            self._events.append(dict(params))
            self._cond.notify_all()

    def close(self) -> None:
        """Nothing to release."""

    @property
    def events(self) -> list[dict[str, str]]:
        """A snapshot of every event so far."""
        with self._cond:
            return list(self._events)

    def clear(self) -> None:
        """Forget the events received so far."""
        with self._cond:
            self._events.clear()

    def wait_for(
        self, predicate: Callable[[list[dict[str, str]]], bool], timeout: float = 10.0
    ) -> list[dict[str, str]]:
        """Block until ``predicate(events)`` holds; return the events, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self._events):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met after {timeout}s: {self._events!r:.500}")
                self._cond.wait(remaining)
            return list(self._events)


@dataclass(frozen=True)
class PostedEvent:
    """What happened to one event sent by ``HttpSink``."""

    ssn_event: str
    call_id: str
    #: Final HTTP status, or None when the receiver never answered.
    status: int | None
    attempts: int
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """The receiver accepted the event (2xx)."""
        return self.status is not None and 200 <= self.status < 300


TextForm = Literal["utf-8", "latin1", "utf8-raw", "latin1-raw"]
#: Characters a trigger's URL would carry unescaped (besides letters, digits and ``_.-~``).
_URL_SAFE = "|@:/,'()"


def encode_query(params: dict[str, str], text: TextForm) -> bytes:
    """The query string of an event, its non-ASCII text in the given form.

    ASCII characters are escaped as usual (``&``, ``=``, ``%``, spaces must be); only what
    happens to the rest differs. latin1 forms use cp1252 (MySQL's "latin1"), ``?`` for a
    character it has not.
    """
    charset = "utf-8" if text in ("utf-8", "utf8-raw") else "cp1252"
    raw = text.endswith("-raw")
    parts = []
    for key, value in params.items():
        encoded = []
        for char in value:
            if char.isascii() or not raw:
                encoded.append(quote(char, safe=_URL_SAFE, encoding=charset, errors="replace"))
            else:
                encoded.append(char.encode(charset, errors="replace").decode("latin-1"))
        parts.append(f"{quote(key, safe='')}={''.join(encoded)}")
    return "&".join(parts).encode("latin-1")


def raw_get(url: str, query: bytes, timeout: float) -> int:
    """``GET url?query`` over a plain socket, the query's bytes as they are; the status."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"raw text forms need an http:// URL, got {url!r:.80}")
    target = (parts.path or "/").encode() + b"?" + query
    host = parts.hostname
    with socket.create_connection((host, parts.port or 80), timeout=timeout) as sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: " + parts.netloc.encode() + b"\r\n"
            b"Connection: close\r\nUser-Agent: curl/7.88.1\r\n\r\n"
        )
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("connection closed before the status line")
            head += chunk
    return int(head.split(b" ", 2)[1])


class HttpSink:
    """Sends each event as ``GET url?ssn_event=...&...`` like the vendor's trigger curl."""

    def __init__(
        self,
        url: str,
        token: str | SecretStr | None = None,
        *,
        token_param: str = "token",  # noqa: S107 - a parameter name, not a secret
        attempts: int = 4,
        timeout: float = 10.0,
        backoff: float = 0.2,
        client: httpx.Client | None = None,
        text: TextForm = "utf-8",
        company_tokens: Mapping[str, str | SecretStr] | None = None,
        company_param: str = "company_id",
    ) -> None:
        """``company_tokens``: a PBX company id -> the ingress token of that company's
        callback URL (each company of a multi-company PBX has its own URL); an event of a
        company without one carries ``token``."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"callback URL must be http:// or https://, got {url!r:.80}")
        if text.endswith("-raw") and not url.startswith("http://"):
            raise ValueError(f"text={text} needs an http:// callback URL")
        #: How non-ASCII text travels (see the module's docstring).
        self.text: TextForm = text
        self._timeout = timeout
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.url = url
        self._token = SecretStr(token) if isinstance(token, str) else token
        self._token_param = token_param
        self._company_tokens = {
            str(k): SecretStr(v) if isinstance(v, str) else v
            for k, v in (company_tokens or {}).items()
        }
        self._company_param = company_param
        self._attempts = attempts
        self._backoff = backoff
        self._client = client or httpx.Client(timeout=timeout)
        self._owns_client = client is None
        self._lock = threading.Lock()
        self._deliveries: list[PostedEvent] = []

    def __repr__(self) -> str:
        token = "**********" if self._token is not None else "None"
        companies = (
            f", company_tokens={sorted(self._company_tokens)}" if self._company_tokens else ""
        )
        return f"HttpSink(url={self.url!r}, token={token}{companies})"

    @property
    def deliveries(self) -> list[PostedEvent]:
        """Every event sent so far with its final status."""
        with self._lock:
            return list(self._deliveries)

    @property
    def statuses(self) -> list[int | None]:
        """Final status of every event, in order (None: never answered)."""
        return [d.status for d in self.deliveries]

    def emit(self, params: dict[str, str]) -> None:
        """Send one event; never raises. Retries connection errors and 5xx, not 2xx/4xx."""
        query = dict(params)
        token = self._company_tokens.get(params.get(self._company_param, ""), self._token)
        if token is not None:
            query[self._token_param] = token.get_secret_value()
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        attempt = 0
        for attempt in range(1, self._attempts + 1):
            try:
                status = self._send(query)
            except (httpx.TransportError, OSError) as exc:
                status, error = None, type(exc).__name__
            else:
                error = None
                if status < 500:
                    break
                error = f"HTTP {status}"
            if attempt < self._attempts:
                time.sleep(self._backoff * 2 ** (attempt - 1))
        delivery = PostedEvent(
            ssn_event=params.get("ssn_event", ""),
            call_id=params.get("call_id", params.get("device_id", "")),
            status=status,
            attempts=attempt,
            seconds=time.monotonic() - started,
            error=error,
        )
        if not delivery.ok:
            # The URL is logged without its query: the query carries the token.
            log.warning(
                "event %s for %s not accepted by %s: %s after %d attempt(s)",
                delivery.ssn_event,
                delivery.call_id,
                self.url,
                error or f"HTTP {status}",
                attempt,
            )
        with self._lock:
            self._deliveries.append(delivery)

    def _send(self, query: dict[str, str]) -> int:
        if self.text == "utf-8":
            return self._client.get(self.url, params=query).status_code
        encoded = encode_query(query, self.text)
        if self.text == "latin1":  # all ASCII: the escapes go through httpx untouched
            return self._client.get(f"{self.url}?{encoded.decode('ascii')}").status_code
        return raw_get(self.url, encoded, self._timeout)

    def close(self) -> None:
        """Close the HTTP client if this sink created it."""
        if self._owns_client:
            self._client.close()


_STOP = object()


class QueuedSink:
    """Delivers to ``inner`` on one background thread, in emit order; ``flush`` waits."""

    def __init__(self, inner: EventSink) -> None:
        self.inner = inner
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="sim-events", daemon=True)
        self._closed = False
        self._thread.start()

    def __repr__(self) -> str:
        return f"QueuedSink({self.inner!r})"

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, dict)
                try:
                    self.inner.emit(item)
                except Exception:  # a sink must not kill the delivery thread
                    log.exception("event sink %r failed", self.inner)
            finally:
                self._queue.task_done()

    def emit(self, params: dict[str, str]) -> None:
        """Queue the event; returns at once."""
        if self._closed:
            raise RuntimeError("sink is closed")
        self._queue.put(dict(params))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued event was handed to ``inner`` (TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self._queue.unfinished_tasks} event(s) still queued")
            time.sleep(0.005)

    def close(self) -> None:
        """Deliver what is queued, stop the thread, close ``inner``."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=60)
        self.inner.close()


class FanoutSink:
    """Hands every event to several sinks, in order (e.g. an HttpSink and a MemorySink)."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = sinks

    def __repr__(self) -> str:
        return f"FanoutSink{self.sinks!r}"

    def emit(self, params: dict[str, str]) -> None:
        """Emit to each sink."""
        for sink in self.sinks:
            sink.emit(params)

    def close(self) -> None:
        """Close each sink."""
        for sink in self.sinks:
            sink.close()
