"""``ConnectorTests`` fails a connector that breaks the contract (run in a child pytest)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).parent

BAD = textwrap.dedent(
    '''
    import logging
    from collections.abc import Iterator

    import pytest
    from kit_crm import TOKEN, KitCrm, KitCrmPlugin

    from callbridge.hookspecs import hookimpl
    from callbridge.models import ActivityRef
    from callbridge.testing import ConnectorTests


    class Sloppy(KitCrmPlugin):
        """Logs every attempt anew, logs its token, and lets outages escape untranslated."""

        name = "kitcrm"

        def __init__(self):
            super().__init__()
            self.counter = 0

        @hookimpl
        def log_call(self, record):
            logging.getLogger("sloppy").info("token=%s", self.settings.token.get_secret_value())
            if self.crm_status_hint():
                raise RuntimeError("boom")
            self.counter += 1
            key = record.idempotency_key(self.name) + f"#{self.counter}"
            self._request("PUT", f"/activities/{key}", json={})
            return ActivityRef(record_type="Activity", record_id=key)

        def crm_status_hint(self):
            return SHARED["status"] is not None


    SHARED = {"status": None}


    class TestSloppy(ConnectorTests):
        known_number = "+390612345678"

        @pytest.fixture(autouse=True)
        def _crm(self) -> Iterator[None]:
            self.crm = KitCrm()
            self.crm.start()
            yield
            self.crm.stop()

        @property
        def settings_env(self):
            return {"CALLBRIDGE_KITCRM_URL": self.crm.url, "CALLBRIDGE_KITCRM_TOKEN": TOKEN}

        def plugin_factory(self):
            return Sloppy()

        def crm_fails(self, kind):
            SHARED["status"] = kind

        def crm_succeeds(self):
            SHARED["status"] = None

        def activity_count(self, record):
            key = record.idempotency_key("kitcrm")
            return sum(1 for k in self.crm.activities if k.startswith(key + "#"))
    '''
)


@pytest.mark.slow
def test_a_sloppy_connector_fails_the_contract(tmp_path: Path) -> None:
    (tmp_path / "test_sloppy.py").write_text(BAD)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env={**_env(), "PYTHONPATH": str(HERE)},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    for name in (
        "test_log_call_is_exactly_once_under_retries",
        "test_failures_map_to_the_core_errors[permanent",
        "test_failures_map_to_the_core_errors[retryable",
        "test_secrets_stay_out_of_reprs_errors_and_logs",
    ):
        assert f"FAILED test_sloppy.py::TestSloppy::{name}" in out, out
    assert "PASSED test_sloppy.py::TestSloppy::test_lookup_returns_a_contact_or_none" in out


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
