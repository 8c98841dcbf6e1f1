"""Finding callers in Zoho: the forms numbers are stored in, module priority, ties, links."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from zoho_fake import FakeZoho, parse_criteria

from callbridge import Contact
from callbridge.testing import make_call
from callbridge_zoho import lookup
from callbridge_zoho.plugin import ZohoPlugin

CALLER = "+390612345678"
CRM = "https://crm.zoho.eu/crm/org20071234/tab"


def _lookup(plugin: ZohoPlugin, number: str = CALLER) -> Contact | None:
    return plugin.lookup_contact(number, make_call(outcome=None, remote_e164=number))


@pytest.mark.parametrize(
    "stored",
    ["+39 06 1234 5678", "06 1234 5678", "0612345678", CALLER, "06 12345678", "+39 06 12345678"],
)
def test_the_caller_is_found_however_the_number_was_typed(
    fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin], stored: str
) -> None:
    anna = fake.add("Contacts", First_Name="Anna", Last_Name="Neri", Mobile=stored,
                    Account_Name={"name": "Acme S.r.l.", "id": "9001"})  # fmt: skip
    found = _lookup(make_plugin())
    assert found is not None
    assert (found.record_type, found.record_id, found.name) == ("Contact", anna, "Anna Neri")
    assert found.company == "Acme S.r.l."
    assert found.url == f"{CRM}/Contacts/{anna}"
    assert found.numbers == [stored]


def test_a_contact_beats_a_lead_and_lower_modules_are_not_searched(
    fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin]
) -> None:
    fake.add("Leads", Last_Name="Lead", Phone=CALLER, Company="Beta")
    contact = fake.add("Contacts", Last_Name="Bianchi", Phone="06 1234 5678")
    found = _lookup(make_plugin())
    assert found is not None and found.record_id == contact
    assert not fake.requests_to("GET", "/crm/v7/Leads/search")  # API credits saved


def test_a_lead_then_an_account_when_no_contact_has_the_number(
    fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin]
) -> None:
    lead = fake.add("Leads", First_Name="Luca", Last_Name="Verdi", Mobile=CALLER, Company="Beta")
    account = fake.add("Accounts", Account_Name="Gamma SpA", Phone="+39 02 8765 4321")
    found = _lookup(make_plugin())
    assert found is not None
    assert (found.record_type, found.record_id, found.company) == ("Lead", lead, "Beta")
    assert found.url == f"{CRM}/Leads/{lead}"
    other = _lookup(make_plugin(), "+390287654321")
    assert other is not None and other.record_type == "Account" and other.name == "Gamma SpA"
    assert other.record_id == account


def test_two_contacts_with_the_number_are_a_tie_for_the_agent(
    fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin]
) -> None:
    first = fake.add("Contacts", Last_Name="Uno", Phone=CALLER)
    second = fake.add("Contacts", Last_Name="Due", Mobile="06 1234 5678")
    fake.add("Leads", Last_Name="Tre", Phone=CALLER)
    found = _lookup(make_plugin())
    assert found is not None and found.ambiguous
    assert {c.record_id for c in found.candidates} == {first, second}


def test_a_near_miss_is_not_a_match(fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin]) -> None:
    # The same national digits in another country: Zoho's text match would not find it, and
    # were it found, the confirmation would drop it.
    fake.add("Contacts", Last_Name="Elsewhere", Phone="+33 6 12 34 56 78")
    assert _lookup(make_plugin()) is None
    searches = len(fake.requests)
    assert _lookup(make_plugin(), "201") is None  # an extension: no search at all
    assert len(fake.requests) == searches


def test_formatted_national_numbers_are_escaped_in_the_criteria(
    fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin]
) -> None:
    # A US user types "(202) 555-0143": the parentheses must be escaped for Zoho.
    sam = fake.add("Contacts", Last_Name="Sam", Phone="(202) 555-0143")
    found = _lookup(make_plugin(default_region="US"), "+12025550143")
    assert found is not None and found.record_id == sam
    for request in fake.requests_to("GET", "/crm/v7/Contacts/search"):
        parse_criteria(request.query["criteria"][0])  # what Zoho parses


def test_criteria_keep_to_zohos_ten_conditions() -> None:
    forms = ["a", "b(", "c,", "d", "e", "f"]
    chunks = list(lookup.criteria("Contacts", forms))
    assert len(chunks) == 2
    assert chunks[0].count(":equals:") == 10 and chunks[1].count(":equals:") == 2
    assert "(Phone:equals:b\\()" in chunks[0]
    for chunk in chunks:
        parse_criteria(chunk)


def test_a_failed_search_raises(fake: FakeZoho, make_plugin: Callable[..., ZohoPlugin]) -> None:
    fake.rate_limit_next("GET /crm/v7/Contacts/search")
    from callbridge import RetryLater

    with pytest.raises(RetryLater):
        _lookup(make_plugin())
