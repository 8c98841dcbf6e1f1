"""``serve --role engine``'s app: only ``/healthz``, ``/readyz`` and ``/metrics``, and a
``/readyz`` that tells whether the dispatcher in this very process is healthy. The reader is
wedged for real (its journal read blocks, as on a hung disk or server), not marked stalled."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi.testclient import TestClient
from server_support import make_settings

from callbridge.engine.engine import Engine
from callbridge.journal.base import StoredEvent
from callbridge.journal.sqlite import SqliteJournal
from callbridge.plugins.manager import load_plugins
from callbridge.server.app import create_ops_app
from callbridge.server.services import Services
from callbridge.testing import wait_until


class HangingJournal(SqliteJournal):
    """A real journal whose event reads hang while ``hang`` is set."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.hang = threading.Event()
        self.released = threading.Event()

    def events_after(self, seq: int, limit: int = 500) -> list[StoredEvent]:
        while self.hang.is_set() and not self.released.wait(0.1):
            pass
        return super().events_after(seq, limit)


def test_engine_role_readyz_reports_a_wedged_dispatcher(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    journal = HangingJournal(tmp_path / "journal.sqlite3")
    plugins = load_plugins(settings, entry_points=False)
    engine = Engine(settings, journal=journal, plugins=plugins)
    app = create_ops_app(
        Services(settings=settings, journal=journal, engine=engine), manage_engine=True
    )
    try:
        with TestClient(app) as client:
            assert client.get("/readyz").json() == {"status": "ready"}
            assert client.get("/pbx/events").status_code == 404  # no ingress in this role
            journal.hang.set()
            wait_until(lambda: client.get("/readyz").status_code == 503, "not ready", 60)
            problems = client.get("/readyz").json()["problems"]
            assert problems == [problems[0]]
            assert "the dispatcher's reader loop made no pass for" in problems[0]
            journal.released.set()
            journal.hang.clear()
            wait_until(lambda: client.get("/readyz").status_code == 200, "ready again", 60)
    finally:
        journal.released.set()
        plugins.shutdown(None)
        journal.close()
