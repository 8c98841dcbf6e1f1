"""The standard connector contract (``callbridge.testing.ConnectorTests``) on Zoho CRM.

The plugin is loaded as callbridge loads it (settings from ``CALLBRIDGE_ZOHO_*`` variables)
against the fake Zoho over HTTPS, which answers with Zoho's own error shapes: a 400 with a
refused record (``INVALID_DATA``) for refused data (PermanentError) and a 503 for an outage
(RetryLater); the users API refuses with 403 ``NO_PERMISSION`` for the optional lookup.
"""

from __future__ import annotations

import pytest
from zoho_fake import CLIENT_SECRET, REFRESH_TOKEN, FakeZoho, zoho_env, zoho_error

from callbridge import CallRecord
from callbridge.testing import ConnectorTests, FailureKind
from callbridge_zoho.plugin import ZohoPlugin

KNOWN = "+390612345678"
#: Failures stay until ``crm_succeeds``: however many requests one hook call makes.
_UNTIL_CLEARED = 1_000_000


class TestZohoConnector(ConnectorTests):
    entry_point_name = "zoho"
    known_number = KNOWN
    extra_secrets = (CLIENT_SECRET, REFRESH_TOKEN)

    @pytest.fixture(autouse=True)
    def _zoho(self, fake: FakeZoho) -> None:
        self.fake = fake
        fake.add("Contacts", First_Name="Mario", Last_Name="Rossi", Phone="06 1234 5678")
        fake.add_user("mario@acme.example", "Mario Rossi")

    @property
    def settings_env(self) -> dict[str, str]:
        return {
            **zoho_env(self.fake),
            # The agent's owner is looked up by e-mail (the optional lookup of the contract).
            "CALLBRIDGE_ZOHO_OWNER_EMAILS": "201=mario@acme.example",
        }

    def plugin_factory(self) -> object:
        return ZohoPlugin()

    def crm_fails(self, kind: FailureKind) -> None:
        if kind == "permanent":
            body = {"data": [zoho_error("INVALID_DATA", "invalid data", {"api_name": "Subject"})]}
            self.fake.fail_next("POST /crm/v7/Calls/upsert", 400, body, _UNTIL_CLEARED)
        else:
            body = zoho_error("INTERNAL_ERROR", "Internal Server Error")
            self.fake.fail_next("/crm/", 503, body, _UNTIL_CLEARED)

    def optional_lookup_fails(self) -> None:
        body = zoho_error(
            "NO_PERMISSION", "permission denied", {"permissions": ["Crm_Implied_View_Users"]}
        )
        self.fake.fail_next("GET /crm/v7/users", 403, body, _UNTIL_CLEARED)

    def crm_succeeds(self) -> None:
        self.fake.clear_faults()

    def activity_count(self, record: CallRecord) -> int:
        key = record.idempotency_key("zoho")
        return sum(1 for call in self.fake.calls() if call.get("Callbridge_Key") == key)
