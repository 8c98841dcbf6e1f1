"""Pick and open the journal backend the settings ask for.

The service, the CLI and the tests all open the journal here, so that ``CALLBRIDGE_JOURNAL``
means the same thing everywhere: ``sqlite`` (the embedded default, a file in the data
directory), a ``sqlite:///path/to/file`` URL for another place, or a ``redis://`` /
``rediss://`` URL for the Redis backend (``journal/redis/``), ``redis+sentinel://`` for Redis
behind Sentinel (docs/scaling.md).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigurationError
from ..settings import Settings
from .base import Journal

#: File name of the embedded journal inside ``CALLBRIDGE_DATA_DIR``.
SQLITE_FILE_NAME = "journal.sqlite3"


def journal_path(settings: Settings) -> Path:
    """Where the SQLite journal lives for these settings."""
    spec = settings.journal.get_secret_value().strip()
    if spec.startswith("sqlite:///"):
        return Path(spec.removeprefix("sqlite:///"))
    return settings.data_dir / SQLITE_FILE_NAME


def open_journal(settings: Settings, *, beside_ingress: bool = False) -> Journal:
    """Open the journal the settings name; unknown backends are a configuration error.

    ``beside_ingress``: True in the engine's process when an HTTP service runs beside it
    (see ``SqliteJournal``); Redis needs no such care.
    """
    spec = settings.journal.get_secret_value().strip()
    if spec == "sqlite" or spec.startswith("sqlite:///"):
        import sqlite3

        from ..faults import file_fault
        from .sqlite import SqliteJournal

        path = journal_path(settings)
        try:
            return SqliteJournal(
                path, dedup_window=settings.dedup_window, beside_ingress=beside_ingress
            )
        except (sqlite3.OperationalError, OSError) as exc:
            # A readable line and exit status 2 instead of a traceback (an unwritable data
            # directory is the usual first-run fault).
            raise ConfigurationError(file_fault(path, exc, "cannot be opened")) from exc
    if spec.startswith(("redis://", "rediss://", "redis+sentinel://")):
        from .redis import RedisJournal

        return RedisJournal(spec, dedup_window=settings.dedup_window)
    scheme = spec.partition(":")[0] or spec
    raise ConfigurationError(
        f"CALLBRIDGE_JOURNAL: unsupported journal backend {scheme!r} "
        "(use 'sqlite', 'sqlite:///path/to/file' or 'redis://host[:port][/db][?prefix=name]')"
    )
