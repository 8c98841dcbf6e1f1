"""The standard connector contract (``callbridge.testing.ConnectorTests``) on HubSpot.

The plugin is loaded as callbridge loads it (settings from ``CALLBRIDGE_HUBSPOT_*``
variables, the ledger in the kit's ``CALLBRIDGE_DATA_DIR``) against the fake HubSpot, which
answers with HubSpot's own error bodies: a 400 ``VALIDATION_ERROR`` for refused data
(PermanentError) and a 503 for an outage (RetryLater).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hs_fake import TOKEN, FakeHubSpot, error_body

from callbridge import CallRecord
from callbridge.testing import ConnectorTests, FailureKind
from callbridge_hubspot.plugin import HubSpotPlugin

KNOWN = "+390612345678"
#: Failures stay until ``crm_succeeds``: however many requests one hook call makes.
_UNTIL_CLEARED = 1_000_000


class TestHubSpotConnector(ConnectorTests):
    entry_point_name = "hubspot"
    known_number = KNOWN

    @pytest.fixture(autouse=True)
    def _hubspot(self) -> Iterator[None]:
        self.fake = FakeHubSpot().start()
        self.fake.add_contact(firstname="Mario", lastname="Rossi", phone=KNOWN)
        self.fake.add_owner("mario@acme.example", "Mario", "Rossi")
        yield
        self.fake.stop()

    @property
    def settings_env(self) -> dict[str, str]:
        return {
            "CALLBRIDGE_HUBSPOT_ACCESS_TOKEN": TOKEN,
            "CALLBRIDGE_HUBSPOT_API_HOST": self.fake.url,
            "CALLBRIDGE_HUBSPOT_SEARCH_RATE": "50",
            "CALLBRIDGE_HUBSPOT_DEFAULT_REGION": "IT",
            "CALLBRIDGE_HUBSPOT_TIMEOUT": "5",
            # A 503 leaves the attempt uncertain; the connector then searches for the call
            # and, finding none, waits up to SEARCH_LAG for HubSpot's index before creating.
            # This fake's search never lags (``hold_index`` is off), so no wait is needed and
            # the kit's immediate retry exercises the search-then-create path.
            "CALLBRIDGE_HUBSPOT_SEARCH_LAG": "0",
            # The agent's owner is looked up by e-mail (the optional lookup of the contract).
            "CALLBRIDGE_HUBSPOT_OWNER_EMAILS": "201=mario@acme.example",
        }

    def plugin_factory(self) -> object:
        return HubSpotPlugin()

    def crm_fails(self, kind: FailureKind) -> None:
        if kind == "permanent":
            body = error_body(
                'Property values were not valid: [{"isValid":false,"message":"hs_timestamp '
                'is required","error":"REQUIRED_FIELD","name":"hs_timestamp"}]',
                "VALIDATION_ERROR",
            )
            self.fake.fail_next("POST /crm/v3/objects/calls", 400, body, _UNTIL_CLEARED)
        else:
            body = error_body("Service Unavailable", "SERVICE_UNAVAILABLE")
            self.fake.fail_next("", 503, body, _UNTIL_CLEARED)

    def optional_lookup_fails(self) -> None:
        # The private app lacks the owners scope: HubSpot answers 403 MISSING_SCOPES.
        body = error_body(
            "This app hasn't been granted all required scopes to make this call.",
            "MISSING_SCOPES",
        )
        self.fake.fail_next("GET /crm/v3/owners", 403, body, _UNTIL_CLEARED)

    def crm_succeeds(self) -> None:
        with self.fake.lock:
            self.fake.faults.clear()

    def activity_count(self, record: CallRecord) -> int:
        key = record.idempotency_key("hubspot")
        with self.fake.lock:
            return sum(
                1
                for call in self.fake.calls.values()
                if call["properties"].get("hs_call_external_id") == key
            )
