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
