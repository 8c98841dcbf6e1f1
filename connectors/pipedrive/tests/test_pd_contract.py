"""The standard connector contract (``callbridge.testing.ConnectorTests``) on Pipedrive.

The plugin is loaded as callbridge loads it (settings from ``CALLBRIDGE_PIPEDRIVE_*``
variables, the ledger in the kit's ``CALLBRIDGE_DATA_DIR``) against the fake Pipedrive over
HTTPS, which answers with Pipedrive's own error bodies: a 400 for a refused call log
(PermanentError), a 503 for an outage (RetryLater), a 403 from the users API (the optional
lookup of the agent's user).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pd_fake import API_TOKEN, FakePipedrive, error_body

from callbridge import CallRecord
from callbridge.testing import ConnectorTests, FailureKind, LocalCa
from callbridge_pipedrive.plugin import PipedrivePlugin

KNOWN = "+390612345678"
#: Failures stay until ``crm_succeeds``: however many requests one hook call makes.
_UNTIL_CLEARED = 1_000_000


class TestPipedriveConnector(ConnectorTests):
    entry_point_name = "pipedrive"
    known_number = KNOWN

    @pytest.fixture(autouse=True)
    def _pipedrive(self, pd_ca: LocalCa) -> Iterator[None]:
        self.fake = FakePipedrive(pd_ca).start()
        self.ca = pd_ca.pem
        org = self.fake.add_org("Rossi Srl")
        self.fake.add_person("Mario Rossi", "+39 06 1234 5678", org_id=org)
        self.fake.add_user("mario@acme.example", "Mario Rossi")
        yield
        self.fake.stop()

    @property
    def settings_env(self) -> dict[str, str]:
        return {
            "CALLBRIDGE_PIPEDRIVE_COMPANY_DOMAIN": "acme",
            "CALLBRIDGE_PIPEDRIVE_API_TOKEN": API_TOKEN,
            "CALLBRIDGE_PIPEDRIVE_API_URL": self.fake.url,
            "CALLBRIDGE_PIPEDRIVE_CA_BUNDLE": str(self.ca),
            "CALLBRIDGE_PIPEDRIVE_DEFAULT_REGION": "IT",
            "CALLBRIDGE_PIPEDRIVE_TIMEOUT": "5",
            # The agent's user is looked up by e-mail (the optional lookup of the contract).
            "CALLBRIDGE_PIPEDRIVE_USER_EMAILS": "201=mario@acme.example",
        }

    def plugin_factory(self) -> object:
        return PipedrivePlugin()

    def crm_fails(self, kind: FailureKind) -> None:
        if kind == "permanent":
            body = error_body("outcome must be one of the allowed values")
            self.fake.fail_next("POST /v1/callLogs", 400, body, _UNTIL_CLEARED)
        else:
            self.fake.fail_next("", 503, error_body("Service Unavailable"), _UNTIL_CLEARED)

    def optional_lookup_fails(self) -> None:
        body = error_body("You do not have permission to access this resource.")
        self.fake.fail_next("GET /v1/users/find", 403, body, _UNTIL_CLEARED)

    def crm_succeeds(self) -> None:
        self.fake.clear_faults()

    def activity_count(self, record: CallRecord) -> int:
        return len(self.fake.logs_with(record.idempotency_key("pipedrive")))
