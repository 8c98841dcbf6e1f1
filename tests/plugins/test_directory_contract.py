"""The standard connector contract (``ConnectorTests``) on the built-in ``directory`` plugin.

The directory is the CRM a deployment without one gets, so it keeps the same contract as
the real connectors: contacts from a CSV file, exactly one activity per call in its SQLite
file, a reused PBX call id logged again. It cannot fail like a remote CRM, so the failure
tests skip (with the reason) rather than pass.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from callbridge.models import CallRecord
from callbridge.plugins.builtin.directory import DirectoryPlugin
from callbridge.testing import ConnectorTests

KNOWN = "+390612345678"


class TestDirectoryConnector(ConnectorTests):
    known_number = KNOWN

    @pytest.fixture(autouse=True)
    def _files(self, tmp_path: Path) -> None:
        self.csv = tmp_path / "contacts.csv"
        self.csv.write_text(
            "name,company,numbers\nMario Rossi,Rossi Srl,06 1234 5678\n", encoding="utf-8"
        )
        self.database = tmp_path / "directory.sqlite3"

    @property
    def settings_env(self) -> dict[str, str]:
        return {
            "CALLBRIDGE_DIRECTORY_CSV": str(self.csv),
            "CALLBRIDGE_DIRECTORY_DATABASE": str(self.database),
        }

    def plugin_factory(self) -> object:
        return DirectoryPlugin()

    def activity_count(self, record: CallRecord) -> int:
        with sqlite3.connect(self.database) as db:
            row = db.execute(
                "SELECT COUNT(*) FROM activities WHERE idempotency_key = ?",
                (record.idempotency_key("directory"),),
            ).fetchone()
        return int(row[0])
