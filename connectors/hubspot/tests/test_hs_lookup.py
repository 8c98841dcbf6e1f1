"""Lookup against the fake HubSpot: number formats, confirmation, the ambiguity rule, links."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hs_fake import FakeHubSpot
from hs_support import make_call

from callbridge_hubspot.plugin import HubSpotPlugin

ROME = "+390612345678"


@pytest.mark.parametrize(
    "stored",
    ["+39 06 1234 5678", "06 12345678", "0039 06-1234-5678", "+390612345678", "(06) 1234.5678"],
)
def test_finds_a_contact_whatever_the_stored_format(
    fake: FakeHubSpot, make_plugin: Callable[..., HubSpotPlugin], stored: str
) -> None:
    cid = fake.add_contact(firstname="Anna", lastname="Rossi", company="Acme", phone=stored)
    plugin = make_plugin()
    contact = plugin.lookup_contact(ROME, make_call())
    assert contact is not None
    assert contact.record_id == cid
    assert contact.name == "Anna Rossi"
    assert contact.company == "Acme"
    assert contact.url == f"https://app-eu1.hubspot.com/contacts/7654321/record/0-1/{cid}"
    assert not contact.ambiguous


def test_caller_number_formats_and_mobile(
    fake: FakeHubSpot, make_plugin: Callable[..., HubSpotPlugin]
) -> None:
    cid = fake.add_contact(firstname="Bruno", mobilephone="+39 347 123 4567")
    plugin = make_plugin()
    for number in ["+393471234567", "3471234567", "00393471234567"]:
        contact = plugin.lookup_contact(number, make_call(remote=number))
        assert contact is not None, number
        assert contact.record_id == cid, number


def test_search_request_uses_the_searchable_properties(
    fake: FakeHubSpot, make_plugin: Callable[..., HubSpotPlugin]
) -> None:
    make_plugin().lookup_contact(ROME, make_call())
    (request,) = [r for r in fake.requests if r.path == "/crm/v3/objects/contacts/search"]
    filters = [g["filters"][0] for g in request.body["filterGroups"]]
    assert {"propertyName": "hs_searchable_calculated_phone_number", "operator": "IN",
            "values": ["612345678", "0612345678"]} in filters  # fmt: skip
    assert {"propertyName": "hs_searchable_calculated_mobile_number", "operator": "IN",
            "values": ["612345678", "0612345678"]} in filters  # fmt: skip
    assert {"propertyName": "phone", "operator": "EQ", "value": ROME} in filters
    assert "hubspot_owner_id" in request.body["properties"]
    assert request.headers["authorization"].startswith("Bearer pat-")


def test_a_digit_collision_in_another_country_is_not_a_match(
    fake: FakeHubSpot, make_plugin: Callable[..., HubSpotPlugin]
) -> None:
    # Same national digits, other country: the search finds it, the confirmation drops it.
    fake.add_contact(firstname="Wrong", phone="+33 612345678")
    fake.contacts[next(iter(fake.contacts))]["hs_searchable_calculated_phone_number"] = "0612345678"
    assert make_plugin().lookup_contact(ROME, make_call()) is None


def test_unknown_number_and_extensions(
    fake: FakeHubSpot, make_plugin: Callable[..., HubSpotPlugin]
) -> None:
    plugin = make_plugin()
    assert plugin.lookup_contact("+390699999999", make_call()) is None
    before = fake.count("POST", "/crm/v3/objects/contacts/search")
    assert plugin.lookup_contact("201", make_call()) is None
    assert fake.count("POST", "/crm/v3/objects/contacts/search") == before


def test_most_recently_contacted_wins_when_clearly_newer(
    fake: FakeHubSpot, make_plugin: Callable[..., HubSpotPlugin]
) -> None:
    fake.add_contact(firstname="Old", phone=ROME, notes_last_contacted="2024-01-01T10:00:00Z")
    new = fake.add_contact(firstname="New", phone=ROME, notes_last_contacted="2025-02-01T10:00:00Z")
    contact = make_plugin().lookup_contact(ROME, make_call())
    assert contact is not None
    assert contact.record_id == new
    assert not contact.ambiguous


def test_last_modified_breaks_a_tie_of_last_contact(
    fake: FakeHubSpot, make_plugin: Callable[..., HubSpotPlugin]
) -> None:
    fake.add_contact(firstname="A", phone=ROME, lastmodifieddate="2024-01-01T10:00:00Z")
    b = fake.add_contact(firstname="B", phone=ROME, lastmodifieddate="1735725600000")  # 2025-01-01
    contact = make_plugin().lookup_contact(ROME, make_call())
    assert contact is not None
    assert contact.record_id == b


def test_near_tie_is_ambiguous_with_candidates(
    fake: FakeHubSpot, make_plugin: Callable[..., HubSpotPlugin]
) -> None:
    a = fake.add_contact(firstname="A", phone=ROME, lastmodifieddate="2025-01-01T10:00:00Z")
    b = fake.add_contact(firstname="B", mobilephone=ROME, lastmodifieddate="2025-01-01T10:20:00Z")
    contact = make_plugin().lookup_contact(ROME, make_call())
    assert contact is not None
    assert contact.ambiguous
    assert [c.record_id for c in contact.candidates] == [b, a]  # most recent first
    assert contact.name == "2 contacts match"
    # With no margin the newer one wins.
    contact = make_plugin(ambiguity_margin=0).lookup_contact(ROME, make_call())
    assert contact is not None
    assert contact.record_id == b


def test_results_are_paged(fake: FakeHubSpot, make_plugin: Callable[..., HubSpotPlugin]) -> None:
    for i in range(130):
        fake.add_contact(firstname=f"C{i}", phone=ROME, lastmodifieddate="2025-01-01T10:00:00Z")
    contact = make_plugin().lookup_contact(ROME, make_call())
    assert contact is not None
    assert len(contact.candidates) == 130
    assert fake.count("POST", "/crm/v3/objects/contacts/search") == 2


def test_the_core_caches_with_the_connectors_ttls(
    fake: FakeHubSpot, make_plugin: Callable[..., HubSpotPlugin]
) -> None:
    """The core's lookup cache is the only one (as the hook docs say): the connector hands
    it its TTLs and keeps none of its own; account details are still read once."""
    fake.add_contact(firstname="Anna", phone=ROME)
    plugin = make_plugin(lookup_cache_ttl=120, lookup_negative_ttl=5)
    plugin.lookup_contact(ROME, make_call())
    plugin.lookup_contact("06 1234 5678", make_call())
    assert fake.count("POST", "/crm/v3/objects/contacts/search") == 2
    assert fake.count("GET", "/account-info/v3/details") == 1
    assert (plugin.lookup_cache_ttl, plugin.lookup_negative_ttl) == (120.0, 5.0)


def test_configured_portal_skips_account_info(
    fake: FakeHubSpot, make_plugin: Callable[..., HubSpotPlugin]
) -> None:
    cid = fake.add_contact(firstname="Anna", phone=ROME)
    plugin = make_plugin(portal_id="42", ui_domain="app.hubspot.com")
    contact = plugin.lookup_contact(ROME, make_call())
    assert contact is not None
    assert contact.url == f"https://app.hubspot.com/contacts/42/record/0-1/{cid}"
    assert fake.count("GET", "/account-info/v3/details") == 0
