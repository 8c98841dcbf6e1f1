"""``ConnectorTests`` run against the kit's own HTTP CRM connector (every test must pass)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kit_crm import TOKEN, KitCrm, KitCrmPlugin

from callbridge.models import CallRecord
from callbridge.testing import ConnectorTests, FailureKind, overrides_standard_test


class TestKitCrm(ConnectorTests):
    known_number = "+390612345678"

    @pytest.fixture(autouse=True)
    def _crm(self) -> Iterator[None]:
        self.crm = KitCrm()
        self.crm.start()
        yield
        self.crm.stop()

    @property
    def settings_env(self) -> dict[str, str]:
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


def test_a_silently_overridden_standard_test_fails_the_guard() -> None:
    """langchain's guard: replacing a standard test without a reason is caught by name."""

    class Silent(TestKitCrm):
        def test_failures_map_to_the_core_errors(self) -> None:  # type: ignore[override]
            pass  # "passes" whatever the connector does

    with pytest.raises(AssertionError, match="test_failures_map_to_the_core_errors"):
        Silent().test_no_standard_test_is_overridden_silently()

    class Removed(TestKitCrm):
        test_secrets_stay_out_of_reprs_errors_and_logs = None  # type: ignore[assignment]

    with pytest.raises(AssertionError, match="test_secrets_stay_out_of_reprs_errors_and_logs"):
        Removed().test_no_standard_test_is_overridden_silently()


def test_an_override_with_a_reason_passes_the_guard() -> None:
    class Explained(TestKitCrm):
        @overrides_standard_test("this CRM has no search API; lookups are tested elsewhere")
        def test_lookup_returns_a_contact_or_none(self) -> None:  # type: ignore[override]
            pass

        @pytest.mark.xfail(reason="the fake cannot refuse data yet", strict=True)
        def test_failures_map_to_the_core_errors(self) -> None:  # type: ignore[override]
            raise AssertionError

    Explained().test_no_standard_test_is_overridden_silently()
    with pytest.raises(ValueError, match="reason"):
        overrides_standard_test("  ")
