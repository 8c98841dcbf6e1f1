"""A whole callbridge plugin in one file: appends each missed call to a text log.

Load it without installing anything::

    CALLBRIDGE_PLUGINS=/path/to/missed_calls_log.py callbridge plugins

Module-level ``@hookimpl`` functions are the hooks; ``name`` is how callbridge lists it.
``configure(settings, core)`` gets the core settings (there is no settings class here, so
``settings`` is None) and picks the file: ``$CALLBRIDGE_DATA_DIR/missed-calls.log``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from callbridge import ActivityRef, CallRecord, Outcome, Settings, hookimpl

name = "missed-calls-log"

_state: dict[str, Path] = {}
_lock = threading.Lock()


def configure(settings: None, core: Settings) -> None:
    """Remember where the log goes (the data directory exists or is created)."""
    core.data_dir.mkdir(parents=True, exist_ok=True)
    _state["path"] = core.data_dir / "missed-calls.log"


def _already_logged(path: Path, key: str) -> bool:
    if not path.exists():
        return False
    with path.open(encoding="utf-8") as lines:
        return any(line.rstrip("\n").endswith(key) for line in lines)


@hookimpl
def log_call(record: CallRecord) -> ActivityRef | None:
    """One line per missed call; a retried delivery finds its key and writes nothing."""
    if record.call.outcome is not Outcome.MISSED:
        return None
    path = _state["path"]
    key = record.idempotency_key(name)
    with _lock:
        if not _already_logged(path, key):
            when = record.call.ring_at.isoformat() if record.call.ring_at else "?"
            who = record.call.remote_e164 or record.call.remote_number or "unknown"
            with path.open("a", encoding="utf-8") as out:
                out.write(f"{when}\t{who}\text {record.call.extension or '?'}\t{key}\n")
    return ActivityRef(record_type="line", record_id=key)
