"""``/healthz`` carries the versions of the core and of every installed connector."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from fastapi.testclient import TestClient
from server_support import make_settings

from callbridge.journal.sqlite import SqliteJournal
from callbridge.server.app import create_app
from callbridge.server.services import Services
from callbridge.versions import installed_versions


def test_healthz_returns_the_versions(tmp_path: Path, journal: SqliteJournal) -> None:
    app = create_app(Services(settings=make_settings(tmp_path), journal=journal))
    with TestClient(app) as client:
        body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["version"] == version("callbridge")
    assert body["versions"] == installed_versions()
    assert body["versions"]["callbridge-salesforce"] == version("callbridge-salesforce")
