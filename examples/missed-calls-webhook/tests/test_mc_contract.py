"""The standard connector contract (callbridge.testing.ConnectorTests) on this plugin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mc_chat import FakeChat

from callbridge import CallRecord, Outcome
from callbridge.testing import ConnectorTests, FailureKind, make_record
from callbridge_missed_calls.plugin import MissedCallsPlugin


class TestMissedCallsContract(ConnectorTests):
    entry_point_name = "missed-calls"

    @pytest.fixture(autouse=True)
    def _chat(self) -> Iterator[None]:
        self.chat = FakeChat()
        self.chat.start()
        yield
        self.chat.stop()

    @property
    def settings_env(self) -> dict[str, str]:
        return {"CALLBRIDGE_MISSED_CALLS_WEBHOOK_URL": self.chat.webhook_url}

    def plugin_factory(self) -> object:
        return MissedCallsPlugin()

    def finished_record(self, name: str) -> CallRecord:
        return make_record("0000BEEF", outcome=Outcome.MISSED)  # this plugin posts missed calls

    def crm_fails(self, kind: FailureKind) -> None:
        self.chat.status = 404 if kind == "permanent" else 503

    def crm_succeeds(self) -> None:
        self.chat.status = None

    def activity_count(self, record: CallRecord) -> int:
        return self.chat.count(record.idempotency_key("missed-calls"))
