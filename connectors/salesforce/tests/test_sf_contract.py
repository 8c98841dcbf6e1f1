"""The standard connector contract (``callbridge.testing.ConnectorTests``) on Salesforce.

The plugin is loaded as callbridge loads it (settings from ``CALLBRIDGE_SALESFORCE_*``
variables, an existing session against the HTTPS fake org), and the fake org answers with
Salesforce's own error arrays: ``INVALID_FIELD`` for refused data (PermanentError) and
``REQUEST_LIMIT_EXCEEDED`` for a passing limit (RetryLater).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sf_fake import FakeOrg

from callbridge import CallRecord
from callbridge.testing import ConnectorTests, FailureKind
from callbridge_salesforce.activity import activity_key
from callbridge_salesforce.plugin import SalesforcePlugin

KNOWN = "+390612345678"
#: Failures stay until ``crm_succeeds``: however many requests one hook call makes.
_UNTIL_CLEARED = 1_000_000


class TestSalesforceConnector(ConnectorTests):
    entry_point_name = "salesforce"
    known_number = KNOWN
    search_query = "mario ross"

    @pytest.fixture(autouse=True)
    def _org(self, sf_server: FakeOrg, sf_ca_file: Path) -> None:
        self.org: FakeOrg = sf_server
        self.org.insert("Contact", FirstName="Mario", LastName="Rossi", Phone=KNOWN)
        self.session_id = self.org.new_session()
        self.ca_file = sf_ca_file

    @property
    def settings_env(self) -> dict[str, str]:
        return {
            "CALLBRIDGE_SALESFORCE_SESSION_ID": self.session_id,
            "CALLBRIDGE_SALESFORCE_INSTANCE_URL": self.org.url,
            "CALLBRIDGE_SALESFORCE_CA_BUNDLE": str(self.ca_file),
            "CALLBRIDGE_SALESFORCE_API_VERSION": self.org.version,
            "CALLBRIDGE_SALESFORCE_DEFAULT_REGION": "IT",
        }

    def plugin_factory(self) -> object:
        return SalesforcePlugin()

    def crm_fails(self, kind: FailureKind) -> None:
        if kind == "permanent":
            # The Task itself is refused, as Salesforce refuses a field it does not know.
            self.org.fail(
                "/sobjects/Task/",
                400,
                "INVALID_FIELD",
                "No such column 'CallObject' on sobject of type Task",
                _UNTIL_CLEARED,
                method="POST",
            )
        else:
            self.org.fail(
                "/services/data/",
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
                _UNTIL_CLEARED,
            )

    def crm_succeeds(self) -> None:
        self.org.clear_faults()

    def optional_lookup_fails(self) -> None:
        # The owner query is refused (the integration user may not read User.Extension).
        self.org.fail(
            "FROM+User",
            400,
            "INVALID_FIELD",
            "No such column 'Extension' on entity 'User'.",
            _UNTIL_CLEARED,
        )

    def activity_count(self, record: CallRecord) -> int:
        key = activity_key(record, "salesforce")
        return sum(1 for task in self.org.tasks() if task.get("CallObject") == key)
