"""Lookup against the fake org through the real simple-salesforce client."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sf_fake import FakeOrg
from sf_helpers import make_call

from callbridge.testing import make_plugins
from callbridge_salesforce.escape import SOSL_RESERVED, select_ids, soql_quote, sosl_escape
from callbridge_salesforce.lookup import build_sosl, search_terms
from callbridge_salesforce.plugin import SalesforcePlugin

Make = Callable[..., SalesforcePlugin]


def _lookup(plugin: SalesforcePlugin, number: str) -> object:
    return plugin.lookup_contact(number=number, call=make_call(number=number))


def test_finds_a_contact_stored_in_national_format(org: FakeOrg, make_plugin: Make) -> None:
    account = org.insert("Account", Name="Acme S.p.A.", Phone="+39 06 9999 9999")
    contact_id = org.insert(
        "Contact", FirstName="Mario", LastName="Rossi", Phone="06 1234 5678", AccountId=account
    )
    contact = make_plugin().lookup_contact(number="+390612345678", call=make_call())
    assert contact is not None
    assert contact.record_type == "Contact"
    assert contact.record_id == contact_id
    assert contact.name == "Mario Rossi"
    assert contact.company == "Acme S.p.A."
    assert contact.connector == "salesforce"
    assert not contact.ambiguous
    host = org.url.removeprefix("https://")
    assert contact.url == f"https://{host}/lightning/r/Contact/{contact_id}/view"


def test_lightning_url_override(org: FakeOrg, make_plugin: Make) -> None:
    lead = org.insert("Lead", LastName="Bianchi", Company="B srl", MobilePhone="+39 333 1234567")
    plugin = make_plugin(lightning_url="https://acme.lightning.force.com")
    contact = _lookup(plugin, "+393331234567")
    assert contact is not None
    assert contact.url == f"https://acme.lightning.force.com/lightning/r/Lead/{lead}/view"  # type: ignore[attr-defined]


def test_object_priority_decides(org: FakeOrg, make_plugin: Make) -> None:
    org.insert("Account", Name="Acme", Phone="+390612345678")
    lead = org.insert("Lead", LastName="Verdi", Company="V", Phone="0612345678")
    contact = _lookup(make_plugin(), "+390612345678")
    assert contact.record_type == "Lead"  # type: ignore[attr-defined]
    assert contact.record_id == lead  # type: ignore[attr-defined]
    account_first = make_plugin(objects="Account,Lead")
    assert _lookup(account_first, "+390612345678").record_type == "Account"  # type: ignore[attr-defined]


def test_converted_leads_are_ignored(org: FakeOrg, make_plugin: Make) -> None:
    org.insert("Lead", LastName="Old", Company="X", Phone="+390612345678", IsConverted=True)
    assert _lookup(make_plugin(), "+390612345678") is None


def test_fuzzy_search_hits_are_confirmed(org: FakeOrg, make_plugin: Make) -> None:
    # The fake, like SOSL, also returns records whose number merely ends the same way.
    org.insert("Contact", LastName="Other", Phone="+41 612345678")
    assert _lookup(make_plugin(), "+390612345678") is None
    assert org.count("GET", "/search/") == 1


def test_true_tie_is_ambiguous_with_candidates(org: FakeOrg, make_plugin: Make) -> None:
    a = org.insert("Contact", LastName="Uno", Phone="+390612345678")
    b = org.insert("Contact", LastName="Due", MobilePhone="06 12345678")
    org.insert("Lead", LastName="Tre", Company="T", Phone="+390612345678")
    contact = _lookup(make_plugin(), "+390612345678")
    assert contact is not None
    assert contact.ambiguous  # type: ignore[attr-defined]
    assert {c.record_id for c in contact.candidates} == {a, b}  # type: ignore[attr-defined]
    assert all(c.url for c in contact.candidates)  # type: ignore[attr-defined]


def test_not_found_and_extensions(org: FakeOrg, make_plugin: Make) -> None:
    plugin = make_plugin()
    assert _lookup(plugin, "+390600000000") is None
    assert _lookup(plugin, "201") is None  # an extension is never searched
    assert org.count("GET", "/search/") == 1


@pytest.mark.parametrize("char", sorted(SOSL_RESERVED))
def test_every_reserved_character_is_escaped(org: FakeOrg, make_plugin: Make, char: str) -> None:
    """The fake rejects an unescaped reserved character with MALFORMED_QUERY, like SOSL."""
    plugin = make_plugin()
    term = f"06{char}1234"
    sosl = build_sosl([term], ["Contact"])
    result = plugin.client.call(lambda sf: sf.search(sosl))
    assert result == {"searchRecords": []}


def test_unescaped_term_is_refused_by_the_fake(org: FakeOrg, make_plugin: Make) -> None:
    from callbridge import PermanentError

    plugin = make_plugin()
    with pytest.raises(PermanentError, match="MALFORMED_QUERY"):
        plugin.client.call(
            lambda sf: sf.search("FIND {+39 06} IN PHONE FIELDS RETURNING Contact(Id)")
        )


def test_escapers() -> None:
    assert sosl_escape("a+b-c") == "a\\+b\\-c"
    assert sosl_escape("\\") == "\\\\"
    assert sosl_escape("".join(sorted(SOSL_RESERVED))) == "".join(
        "\\" + c for c in sorted(SOSL_RESERVED)
    )
    assert soql_quote("it's \\ fine") == "'it\\'s \\\\ fine'"
    assert select_ids("Task", {"CallObject": "1:x'y"}) == (
        "SELECT Id FROM Task WHERE CallObject = '1:x\\'y' LIMIT 1"
    )
    with pytest.raises(ValueError):
        select_ids("Task", {"CallObject = 'x' OR Id": "y"})


def test_search_terms() -> None:
    assert search_terms("+390612345678", "IT") == ["390612345678", "0612345678"]
    assert search_terms("+14155551212", "IT") == ["14155551212", "4155551212"]
    assert search_terms("201", "IT") == []


def test_soql_values_are_quoted_against_the_fake(org: FakeOrg, make_plugin: Make) -> None:
    org.insert("Task", CallObject="1:it's")
    plugin = make_plugin()
    query = select_ids("Task", {"CallObject": "1:it's"})
    result = plugin.client.call(lambda sf: sf.query(query))
    assert result["totalSize"] == 1


def test_cache_ttl_settings_are_the_ttls_the_core_caches_with(
    org: FakeOrg, make_plugin: Make
) -> None:
    """CALLBRIDGE_SALESFORCE_CACHE_TTL / _CACHE_NEGATIVE_TTL reach the core's lookup cache."""
    plugin = make_plugin(cache_ttl=900, cache_negative_ttl=0)
    plugins = make_plugins(plugin)
    assert plugins.lookup_ttl("salesforce", True, 300.0) == 900.0
    assert plugins.lookup_ttl("salesforce", False, 30.0) == 0.0
    unset = make_plugin()  # empty: the core's own TTLs
    assert make_plugins(unset).lookup_ttl("salesforce", True, 300.0) == 300.0
