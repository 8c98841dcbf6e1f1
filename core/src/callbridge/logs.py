"""Logging set-up: readable text or one JSON object per line, secrets never printed.

Secrets are kept out of logs where they are produced (SecretStr, masked reprs); as a last
line of defence the handler here also masks any configured secret value that still slips
into a message.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from .settings import Settings


class _Redact(logging.Filter):
    """Replace known secret values in formatted messages."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            for secret in self._secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def secret_values(settings: Settings) -> list[str]:
    """Every secret the core settings hold, for the redaction filter."""
    values = [s.get_secret_value() for s in settings.server.api_tokens]
    values += [t.partition(":")[0] for t in values]
    for secret in (settings.ingress_token, settings.pbx.password, settings.pbx.password_md5):
        if secret is not None:
            values.append(secret.get_secret_value())
    hashed = settings.pbx.password_hash()
    if hashed:
        values += {hashed, hashed.lower(), hashed.upper()}
    return values


def configure_logging(settings: Settings) -> None:
    """Install one stderr handler in the configured format and level."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(_Redact(secret_values(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
