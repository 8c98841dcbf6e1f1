"""``mysql://user:password@host:port/database`` URLs, and connections made from them.

One parser for every MySQL entry point (the source, the sink, the CLI, the ingress's outbox
fetch), so the password is handled the same way everywhere: kept as a ``SecretStr``, never in
a ``repr``, a log line or an error message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql
from pydantic import SecretStr

from ..errors import ConfigurationError

_DB_NAME = re.compile(r"[A-Za-z0-9_$]{1,64}")
_OPTIONS = frozenset({"unix_socket", "connect_timeout", "read_timeout"})


@dataclass(frozen=True, slots=True)
class MysqlDsn:
    """Where a MySQL/MariaDB database is and how to log in; the password never prints."""

    host: str
    port: int
    user: str
    database: str
    password: SecretStr = field(default_factory=lambda: SecretStr(""))
    unix_socket: str | None = None
    connect_timeout: float = 5.0
    #: Bounds every query, so a half-open connection is noticed instead of hanging forever.
    read_timeout: float = 30.0

    def __repr__(self) -> str:
        return f"MysqlDsn({self.display()!r})"

    __str__ = __repr__

    def display(self) -> str:
        """The URL with the password masked, for messages."""
        where = f"unix:{self.unix_socket}" if self.unix_socket else f"{self.host}:{self.port}"
        return f"mysql://{self.user}:***@{where}/{self.database}"

    def connect(self, **overrides: Any) -> pymysql.connections.Connection[Any]:
        """A new autocommit connection in utf8mb4.

        Autocommit matters for readers: every SELECT sees what is committed now, never an old
        REPEATABLE READ snapshot in which late-committing outbox rows would stay invisible.
        """
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password.get_secret_value(),
            "database": self.database,
            "charset": "utf8mb4",
            "autocommit": True,
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "write_timeout": self.read_timeout,
        }
        if self.unix_socket:
            options["unix_socket"] = self.unix_socket
        options.update(overrides)
        return pymysql.connect(**options)


def parse_dsn(url: str | SecretStr) -> MysqlDsn:
    """Parse ``mysql://user:pw@host:port/db[?unix_socket=...&connect_timeout=...]``.

    Raises ConfigurationError with a message that never contains the password.
    """
    text = url.get_secret_value() if isinstance(url, SecretStr) else url
    try:
        parts = urlsplit(text.strip())
        port = parts.port or 3306
    except ValueError:
        raise ConfigurationError(
            "MySQL URL is malformed (expected mysql://user:pw@host/db)"
        ) from None
    if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
        raise ConfigurationError(
            f"MySQL URL must start with mysql:// (got scheme {parts.scheme or '(none)'!r})"
        )
    database = unquote(parts.path.lstrip("/"))
    if not _DB_NAME.fullmatch(database):
        raise ConfigurationError(
            "MySQL URL must name the database: mysql://user:pw@host:port/<database> "
            "(letters, digits, _ and $ only)"
        )
    if not parts.username:
        raise ConfigurationError("MySQL URL must name the user: mysql://<user>:pw@host/db")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - _OPTIONS)
    if unknown:
        raise ConfigurationError(f"MySQL URL has unknown options: {', '.join(unknown)}")
    try:
        connect_timeout = float(query.get("connect_timeout", 5.0))
        read_timeout = float(query.get("read_timeout", 30.0))
    except ValueError:
        raise ConfigurationError("MySQL URL: timeouts must be numbers of seconds") from None
    return MysqlDsn(
        host=parts.hostname or "127.0.0.1",
        port=port,
        user=unquote(parts.username),
        password=SecretStr(unquote(parts.password or "")),
        database=database,
        unix_socket=query.get("unix_socket"),
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
