"""The ``directory`` plugin as the demo runs it: its own file, sample contacts, a listener.

It is the built-in ``DirectoryPlugin`` with two differences: it is opened on the demo's data
directory before plugins are loaded (so no ``CALLBRIDGE_DIRECTORY_*`` variable can point it
elsewhere or turn it off), and it tells the demo's live view about each activity it writes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from ..models import ActivityRef, CallRecord
from ..plugins.builtin.directory import DirectoryPlugin
from ..plugins.builtin.directory_settings import DEFAULT_RECORD_URL
from ..settings import Settings

log = logging.getLogger(__name__)

ActivityListener = Callable[[CallRecord, ActivityRef], None]


class DemoDirectory(DirectoryPlugin):
    """A ``DirectoryPlugin`` already opened; ``listeners`` hear of every activity written."""

    #: No settings class: the plugin manager reads no environment variable for it.
    settings_class = None  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self._listeners: list[ActivityListener] = []
        self._listeners_lock = threading.Lock()

    @classmethod
    def seeded(cls, path: Path, region: str = "IT") -> DemoDirectory:
        """Open (create) the directory at ``path`` and add the sample contacts."""
        plugin = cls.open(path, region=region)
        assert isinstance(plugin, DemoDirectory)
        plugin.seed_sample_contacts()
        return plugin

    def configure(self, settings: Any, core: Settings) -> None:
        """Already opened by ``seeded``: nothing to read. Another company's instance (made
        by the plugin manager for the two-company demo) opens its company's data directory."""
        if self.record_url == DEFAULT_RECORD_URL:  # its pages: under its instance's routes
            self.record_url = DEFAULT_RECORD_URL.replace("/directory/", f"/{self.instance_name}/")
        if self._path is None:
            self._setup(core.data_dir / "directory.sqlite3", core.default_region, self.record_url)

    def add_listener(self, listener: ActivityListener) -> Callable[[], None]:
        """Call ``listener`` after each ``log_call`` and ``update_call``; returns the function
        that removes it."""
        with self._listeners_lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef:
        """The directory's ``log_call``, then the listeners (whose errors are only logged)."""
        ref = super().log_call(record)
        self._tell(record, ref)
        return ref

    @hookimpl
    def update_call(self, record: CallRecord, activity: ActivityRef, revision: int) -> ActivityRef:
        """The directory's ``update_call`` (an agent's wrap-up), then the listeners: the live
        view shows the activity again as it is now."""
        ref = super().update_call(record, activity, revision)
        self._tell(record, ref)
        return ref

    def _tell(self, record: CallRecord, ref: ActivityRef) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(record, ref)
            except Exception:
                log.exception("demo activity listener failed")
