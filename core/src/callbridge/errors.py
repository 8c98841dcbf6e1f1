"""Exceptions plugins raise to tell the core what to do with a failed delivery."""

from __future__ import annotations


class CallbridgeError(Exception):
    """Base of every error callbridge defines."""


class ConfigurationError(CallbridgeError):
    """Settings are missing or wrong; the message names the variable."""


class PluginError(CallbridgeError):
    """Base for errors a plugin raises from a hook."""


class PermanentError(PluginError):
    """The CRM refused the data itself (bad field, missing permission): retrying cannot help.

    The delivery goes dead at once with this message.
    """


class RetryLater(PluginError):
    """A passing failure (rate limit, outage). ``retry_after`` is a hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retryable_status(status: int) -> bool:
    """Whether an HTTP error status from a CRM is passing: a rate limit, a timeout, an outage.

    429 and 408 (the CRM asks us to come back), 5xx (its side failed, and the request may or
    may not have been carried out), and 0 (no answer at all, as some clients report it).
    """
    return status in (0, 408, 429) or status >= 500


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (a delta or an HTTP date); None when unreadable."""
    if not value or not value.strip():
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    import time
    from email.utils import parsedate_to_datetime

    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def raise_for_crm_status(
    status: int, message: str, *, retry_after: float | str | None = None
) -> None:
    """Raise what a CRM's HTTP answer means for a delivery; return for a 1xx/2xx answer.

    ``RetryLater`` (with ``retry_after``: seconds, or a ``Retry-After`` header's text) for a
    passing failure (``retryable_status``); ``PermanentError`` for any other status from 300
    up (refused data, missing permission, a redirect the client did not follow). ``message``
    says what was tried and is kept as the delivery's error: never put a secret in it.
    """
    if 0 < status < 300:
        return
    text = f"{message} (HTTP {status})"
    if retryable_status(status):
        hint = retry_after_seconds(retry_after) if isinstance(retry_after, str) else retry_after
        raise RetryLater(text, retry_after=hint)
    raise PermanentError(text)
