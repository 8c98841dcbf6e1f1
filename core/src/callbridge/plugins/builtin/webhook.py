"""The ``webhook`` plugin: any CRM with an HTTP endpoint, without writing code.

Pops (``screen_pop``), finished calls (``log_call``) and the agents' wrap-ups of them
(``update_call``, one per revision) are POSTed as JSON to every URL of
``CALLBRIDGE_WEBHOOK_URLS``. Each request is signed so the receiver can trust it::

    X-Callbridge-Timestamp: 1732630000
    X-Callbridge-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with the secret>
    Idempotency-Key: callbridge:<company>:<call id>:webhook      (call records)

Receivers check it with ``verify_signature`` (or the same few lines in their language) and
deduplicate call records on ``Idempotency-Key``: a record is retried until every URL accepted
it, so a receiver may see the same one more than once.

A 429, a 5xx or a network failure raises ``RetryLater`` (honouring ``Retry-After``); any other
4xx raises ``PermanentError`` with the receiver's message. Pops are best effort: a failure is
logged, never retried (a late pop is useless).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from ...errors import PermanentError, RetryLater, retry_after_seconds, retryable_status
from ...hookspecs import hookimpl
from ...models import ActivityRef, CallRecord, ScreenPop
from ...tls import shared_ssl_context
from ..base import PluginSettings

log = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Callbridge-Timestamp"
SIGNATURE_HEADER = "X-Callbridge-Signature"
SIGNATURE_VERSION = "v1"
#: How much of a receiver's error body ends up in a delivery's last error.
MAX_ERROR_TEXT = 500


class WebhookSettings(PluginSettings):
    """``CALLBRIDGE_WEBHOOK_*``: the plugin is "not configured" until URLS is set."""

    model_config = SettingsConfigDict(env_prefix="CALLBRIDGE_WEBHOOK_")

    #: Receivers, comma separated (``https://crm.example/hooks/callbridge,https://...``).
    urls: Annotated[list[str], NoDecode] = Field(min_length=1)
    #: The shared signing secret (at least 16 characters).
    secret: SecretStr
    #: Seconds to connect, and to wait for an answer.
    connect_timeout: float = Field(default=3.0, gt=0)
    timeout: float = Field(default=10.0, gt=0)
    #: Send pops too (``false``: call records only).
    pops: bool = True
    #: ``false`` turns the plugin off.
    enabled: bool | None = None

    @field_validator("urls", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("urls")
    @classmethod
    def _check_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{safe_url(url)!r} is not an http(s) URL")
        return value

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value


def safe_url(url: str) -> str:
    """``scheme://host/path`` without credentials or query: URLs often carry tokens."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else "<invalid url>"


def _key(secret: str | bytes | SecretStr) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes | SecretStr, timestamp: str, body: bytes) -> str:
    """The ``X-Callbridge-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(_key(secret), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


def verify_signature(
    secret: str | bytes | SecretStr,
    timestamp: str,
    body: bytes,
    header: str,
    tolerance_s: float = 300,
    *,
    now: float | None = None,
) -> bool:
    """For receivers: is ``header`` a valid signature of ``body``, sent recently enough?

    ``timestamp`` is the ``X-Callbridge-Timestamp`` header (Unix seconds), ``body`` the raw
    request body as received (not re-serialised JSON), ``header`` the
    ``X-Callbridge-Signature`` header; several comma-separated ``v1=`` values are accepted
    (secret rotation). Requests older or newer than ``tolerance_s`` are refused (replays).
    """
    try:
        sent = int(timestamp.strip())
    except (ValueError, AttributeError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        return False
    expected = sign(secret, str(sent), body)
    candidates = [part.strip() for part in header.split(",")]
    return any(hmac.compare_digest(expected, c) for c in candidates if c)


def _receiver_message(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    if len(text) > MAX_ERROR_TEXT:
        text = text[:MAX_ERROR_TEXT] + "..."
    return f"{response.status_code} {response.reason_phrase}" + (f": {text}" if text else "")


class WebhookPlugin:
    """Signs and POSTs pops and call records to the configured receivers."""

    name = "webhook"
    settings_class = WebhookSettings

    def __init__(self) -> None:
        self.settings: WebhookSettings | None = None
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:
        urls = [safe_url(u) for u in self.settings.urls] if self.settings else []
        return f"WebhookPlugin(urls={urls})"

    def configure(self, settings: WebhookSettings | None) -> None:
        """Keep the settings and open one pooled HTTP client."""
        if settings is None:
            raise ValueError("the webhook plugin needs WebhookSettings")
        self.settings = settings
        self._client = httpx.Client(
            verify=shared_ssl_context(),  # one CA bundle in memory for every instance
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
            headers={"User-Agent": "callbridge-webhook"},
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @hookimpl
    def shutdown(self, context: object) -> None:
        """The service stops: close the client."""
        self.close()

    def _post(self, url: str, payload: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        if self.settings is None or self._client is None:
            raise RuntimeError("the webhook plugin is not configured")
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        signed = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.settings.secret, timestamp, body),
            **headers,
        }
        return self._client.post(url, content=body, headers=signed)

    @hookimpl
    def screen_pop(self, pop: ScreenPop) -> None:
        """POST ``{"type": "screen_pop", ...}`` to every URL; failures are only logged."""
        if self.settings is None or not self.settings.pops:
            return
        payload = {"type": "screen_pop", "pop": pop.model_dump(mode="json")}
        for url in self.settings.urls:
            try:
                response = self._post(url, payload, {})
                if response.status_code >= 300:
                    log.warning("webhook pop to %s: %s", safe_url(url), _receiver_message(response))
            except httpx.HTTPError as exc:
                log.warning("webhook pop to %s failed: %s", safe_url(url), type(exc).__name__)

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef:
        """POST ``{"type": "call_record", ...}`` to every URL; all must accept it.

        The receiver may answer JSON with ``record_id`` and ``url``: they become the returned
        ActivityRef (otherwise the idempotency key stands for the record).
        """
        key = record.idempotency_key(self.name)
        payload = {
            "type": "call_record",
            "idempotency_key": key,
            "record": record.model_dump(mode="json"),
        }
        ref = ActivityRef(connector=self.name, record_type="webhook", record_id=key)
        return self._send(payload, key, ref)

    @hookimpl
    def update_call(self, record: CallRecord, activity: ActivityRef, revision: int) -> ActivityRef:
        """POST ``{"type": "call_update", ...}``: the agent's wrap-up at ``revision``.

        Its ``Idempotency-Key`` is the record's with ``:wrapup:<revision>`` appended (and
        ``:recording:<digest>`` when a recording is known: a late recording is an update of
        its own at the same revision), so a receiver deduplicates each state of the activity
        on its own; all URLs must accept it.
        """
        key = f"{record.idempotency_key(self.name)}:wrapup:{revision}"
        if record.recording:
            key += f":recording:{hashlib.sha256(record.recording.encode()).hexdigest()[:16]}"
        payload = {
            "type": "call_update",
            "idempotency_key": key,
            "revision": revision,
            "activity": activity.model_dump(mode="json"),
            "wrapup": record.wrapup.model_dump(mode="json") if record.wrapup else None,
            "record": record.model_dump(mode="json"),
        }
        return self._send(payload, key, activity)

    def _send(self, payload: dict[str, Any], key: str, ref: ActivityRef) -> ActivityRef:
        """POST ``payload`` to every URL: all must accept it (see the module's docstring)."""
        if self.settings is None:
            raise RuntimeError("the webhook plugin is not configured")
        retry: list[str] = []
        permanent: list[str] = []
        retry_after: float | None = None
        for url in self.settings.urls:
            where = safe_url(url)
            try:
                response = self._post(url, payload, {"Idempotency-Key": key})
            except httpx.HTTPError as exc:
                detail = str(exc).replace(url, where)
                retry.append(f"{where}: {type(exc).__name__}: {detail}")
                continue
            status = response.status_code
            if retryable_status(status):
                retry.append(f"{where}: {_receiver_message(response)}")
                hint = retry_after_seconds(response.headers.get("Retry-After"))
                if hint is not None:
                    retry_after = max(retry_after or 0.0, hint)
            elif status >= 300:
                permanent.append(f"{where}: {_receiver_message(response)}")
            else:
                ref = self._ref_from(response, ref)
        if retry:
            raise RetryLater("; ".join(retry + permanent), retry_after=retry_after)
        if permanent:
            raise PermanentError("; ".join(permanent))
        return ref

    def _ref_from(self, response: httpx.Response, default: ActivityRef) -> ActivityRef:
        try:
            data = response.json()
        except ValueError:
            return default
        if not isinstance(data, dict) or not data.get("record_id"):
            return default
        url = data.get("url")
        return ActivityRef(
            connector=self.name,
            record_type=str(data.get("record_type") or "webhook"),
            record_id=str(data["record_id"]),
            url=str(url) if url else None,
        )
