"""``ConnectorTests`` run against the kit's own HTTP CRM connector (every test must pass)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kit_crm import TOKEN, FakeCrm, KitCrmPlugin

from callbridge.models import CallRecord
from callbridge.testing import ConnectorTests
from callbridge.testing.connector import FailureKind


class TestKitCrm(ConnectorTests):
    known_number = "+390612345678"

    @pytest.fixture(autouse=True)
    def _crm(self) -> Iterator[None]:
        self.crm = FakeCrm()
        self.crm.start()
        yield
        self.crm.stop()

    @property
    def settings_env(self) -> dict[str, str]:  # type: ignore[override]
        return {"CALLBRIDGE_KITCRM_URL": self.crm.url, "CALLBRIDGE_KITCRM_TOKEN": TOKEN}

    def plugin_factory(self) -> object:
        return KitCrmPlugin()

    def crm_fails(self, kind: FailureKind) -> None:
        self.crm.status = 400 if kind == "permanent" else 503

    def crm_succeeds(self) -> None:
        self.crm.status = None

    def activity_count(self, record: CallRecord) -> int:
        key = record.idempotency_key("kitcrm")
        return sum(1 for k in self.crm.activities if k == key)
