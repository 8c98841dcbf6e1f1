"""Fixtures for the HTTP service tests: a real SQLite journal and the app in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_support import Stack, make_settings, run_stack

from callbridge.journal.sqlite import SqliteJournal
from callbridge.server.app import create_app
from callbridge.server.services import Services


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    j = SqliteJournal(tmp_path / "journal.sqlite3")
    yield j
    j.close()


@pytest.fixture
def client(tmp_path: Path, journal: SqliteJournal) -> Iterator[TestClient]:
    services = Services(settings=make_settings(tmp_path), journal=journal)
    with TestClient(create_app(services)) as c:
        yield c


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """The service over real HTTP with the simulator as the PBX (see ``run_stack``)."""
    with run_stack(tmp_path, heartbeat=0.2) as running:
        yield running
