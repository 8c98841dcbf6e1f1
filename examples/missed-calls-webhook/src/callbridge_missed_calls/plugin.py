"""The plugin: settings from ``CALLBRIDGE_MISSED_CALLS_*`` and a ``log_call`` hook.

Only ``log_call`` is implemented: the core calls it once per finished call (retrying it
until it succeeds), so a missed call becomes one chat message even when the chat is down
for a while. Errors are mapped the way the core expects: a 4xx means the webhook is gone
or refuses our message (``PermanentError``, retrying cannot help); 429, 5xx and network
errors pass (``RetryLater``).

The webhook URL *is* the secret (Slack, Mattermost and Rocket.Chat put the token in the
path), so it is a ``SecretStr``, never part of an error message, and redacted from httpx's
own request log.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from callbridge import (
    ActivityRef,
    CallRecord,
    Outcome,
    PluginSettings,
    RetryLater,
    Settings,
    hookimpl,
    raise_for_crm_status,
)

from .ledger import Ledger

log = logging.getLogger(__name__)


class MissedCallsSettings(PluginSettings):
    """``CALLBRIDGE_MISSED_CALLS_*``: only the webhook URL is required."""

    model_config = SettingsConfigDict(env_prefix="CALLBRIDGE_MISSED_CALLS_")

    #: The chat channel's incoming webhook URL (it contains a secret: keep it out of logs).
    webhook_url: SecretStr
    #: Post rejected calls and calls whose end was lost too, not only missed ones.
    include_rejected: bool = True
    #: Seconds to wait for the chat service.
    timeout: float = Field(default=10.0, gt=0)
    #: Ledger of posted calls; default ``$CALLBRIDGE_DATA_DIR/missed-calls.sqlite3``.
    ledger: Path | None = None


class _RedactUrl(logging.Filter):
    """Replaces the webhook URL in httpx's "HTTP Request: POST <url>" log lines."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "<webhook>"), ()
        return True


def message_text(record: CallRecord) -> str:
    """The chat message for one call: who called whom, when, and the CRM record if known."""
    call = record.call
    who = call.remote_e164 or call.remote_number or "an unknown number"
    contact = next(iter(record.contacts.values()), None)
    if contact is not None:
        who = f"{contact.name} ({who})"
        if contact.url:
            who = f"<{contact.url}|{contact.name}> ({call.remote_e164 or call.remote_number})"
    when = call.ring_at.strftime("%Y-%m-%d %H:%M UTC") if call.ring_at else "just now"
    target = f"ext {call.extension}" if call.extension else "the office"
    if call.group:
        target += f" (group {call.group})"
    verb = {Outcome.REJECTED: "Rejected call", Outcome.UNKNOWN: "Unanswered call?"}.get(
        call.outcome or Outcome.UNKNOWN, "Missed call"
    )
    return f":telephone_receiver: {verb} from {who} for {target} at {when}, rang {record.ring_s}s"


class MissedCallsPlugin:
    """Posts one message per missed (or rejected) inbound call."""

    name = "missed-calls"
    settings_class = MissedCallsSettings

    def __init__(self) -> None:
        self._settings: MissedCallsSettings | None = None
        self._ledger: Ledger | None = None

    def __repr__(self) -> str:
        return f"MissedCallsPlugin(configured={self._settings is not None})"

    def configure(self, settings: MissedCallsSettings, core: Settings) -> None:
        """Open the ledger; keep the URL out of httpx's request log."""
        self._settings = settings
        path = settings.ledger or core.data_dir / "missed-calls.sqlite3"
        self._ledger = Ledger(path)
        secret = settings.webhook_url.get_secret_value()
        httpx_log = logging.getLogger("httpx")
        if not any(isinstance(f, _RedactUrl) and f.secret == secret for f in httpx_log.filters):
            httpx_log.addFilter(_RedactUrl(secret))

    def wanted(self, record: CallRecord) -> bool:
        """Inbound calls nobody answered."""
        call = record.call
        if call.direction.value != "inbound" or call.outcome is Outcome.ANSWERED:
            return False
        assert self._settings is not None
        return call.outcome is Outcome.MISSED or self._settings.include_rejected

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef | None:
        """Post the message once; return None for calls that are not posted."""
        if self._settings is None or self._ledger is None or not self.wanted(record):
            return None
        key = record.idempotency_key(self.name)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        ref = ActivityRef(record_type="message", record_id=digest)
        if self._ledger.seen(key):
            return ref  # a retry of a delivery that already went out
        try:
            response = httpx.post(
                self._settings.webhook_url.get_secret_value(),
                json={"text": message_text(record)},
                headers={"Idempotency-Key": key},
                timeout=self._settings.timeout,
            )
        except httpx.HTTPError as exc:
            # Never str(exc): httpx puts the URL, hence the secret, in its messages.
            raise RetryLater(f"chat webhook unreachable ({type(exc).__name__})") from None
        raise_for_crm_status(
            response.status_code,
            f"chat webhook answered: {response.text[:200]}",
            retry_after=response.headers.get("Retry-After"),
        )
        self._ledger.add(key)
        log.info("posted missed call %s", record.call.key)
        return ref
