"""Tuning of the MySQL source (``CALLBRIDGE_MYSQL_*``), and the one way to build it.

The source's URL is the core setting ``CALLBRIDGE_SOURCE``; everything else has a sensible
default and its own variable, so ``callbridge serve`` only has to call ``source_from_settings``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..journal.base import Journal
from ..settings import Settings, load
from .source import MysqlSource

ENV_PREFIX = "CALLBRIDGE_MYSQL_"


class MysqlSourceSettings(BaseSettings):
    """``CALLBRIDGE_MYSQL_POLL_INTERVAL`` and friends."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    #: Seconds between polls when the outbox is empty: the latency of outbox mode (about half
    #: of it on average). Each idle poll is one indexed query; 0.02 costs about 1% of a core
    #: in callbridge and 1.5% in the database more than the default (``bench/mysql.py``).
    poll_interval: float = Field(default=0.2, ge=0.005, le=60)
    #: Rows read per query.
    batch_size: int = Field(default=200, ge=1, le=10_000)
    #: Seconds a skipped outbox id is waited for (a transaction committing late).
    gap_grace: float = Field(default=30.0, ge=0)
    #: Seconds between sweeps for unconsumed rows below the mark.
    sweep_interval: float = Field(default=60.0, gt=0)
    #: ``delete`` consumed rows (default), or ``mark`` them (``consumed_at``) and keep them.
    consume: Literal["delete", "mark"] = "delete"
    #: Seconds users/devices/companies read from the tables stay cached.
    directory_ttl: float = Field(default=300.0, ge=0)
    #: Fill in names, extensions and e-mail from the tables.
    enrich: bool = True
    #: sys_exec mode: after a nudge, poll every this many seconds ...
    nudge_interval: float = Field(default=0.01, ge=0.001, le=1)
    #: ... for this many seconds (more than the triggers' 0.5 s between two nudges).
    nudge_window: float = Field(default=2.0, ge=0, le=60)
    #: sys_exec triggers: curl as the *database server* runs it, e.g. ``C:\curl\bin\curl.exe``
    #: (read by ``callbridge mysql triggers --curl``; the source does not use it).
    curl: str = "curl"
    #: Reconnect backoff bounds, seconds.
    backoff_initial: float = Field(default=0.5, gt=0)
    backoff_max: float = Field(default=30.0, gt=0)


def is_mysql_url(url: str) -> bool:
    """Whether ``CALLBRIDGE_SOURCE`` names a MySQL source."""
    return url.strip().lower().startswith(("mysql://", "mariadb://", "mysql+pymysql://"))


def source_from_settings(settings: Settings, journal: Journal) -> MysqlSource | None:
    """The ``MysqlSource`` that ``CALLBRIDGE_SOURCE`` asks for, or None when it names none.

    Raises ConfigurationError (naming the variable) for a malformed URL or bad tuning.
    """
    if settings.source is None or not is_mysql_url(settings.source.get_secret_value()):
        return None
    tuning = load(MysqlSourceSettings, ENV_PREFIX)
    return MysqlSource(settings.source, journal, **tuning.model_dump(exclude={"curl"}))
