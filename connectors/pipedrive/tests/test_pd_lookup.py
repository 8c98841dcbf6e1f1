"""Finding callers among Pipedrive persons: exact E.164 search, then the national digits."""

from __future__ import annotations

from collections.abc import Callable

from pd_fake import FakePipedrive

from callbridge.testing import make_call
from callbridge_pipedrive.plugin import PipedrivePlugin

SEARCH = "/api/v2/persons/search"


def test_a_person_stored_in_e164_is_found_by_one_exact_search(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    org = fake.add_org("Rossi Srl")
    pid = fake.add_person("Mario Rossi", "+390612345678", org_id=org)
    plugin = make_plugin()
    contact = plugin.lookup_contact("+390612345678", make_call(outcome=None))
    assert contact is not None
    assert (contact.record_type, contact.record_id, contact.name) == (
        "person",
        str(pid),
        "Mario Rossi",
    )
    assert contact.company == "Rossi Srl"  # the organisation is the related record
    assert contact.url == f"https://acme.pipedrive.com/person/{pid}"
    assert contact.numbers == ["+390612345678"]
    assert fake.count("GET", SEARCH) == 1
    with fake.lock:
        query = fake.requests[-1].query
    assert query["term"] == ["+390612345678"]
    assert query["fields"] == ["phone"]
    assert query["exact_match"] == ["true"]


def test_a_number_stored_with_spaces_is_found_by_its_national_digits(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    pid = fake.add_person("Anna Neri", "06 1234 5678")
    fake.add_person("Not Anna", "+39 06 1234 56789")  # contains the digits: not the number
    contact = make_plugin().lookup_contact("+390612345678", make_call(outcome=None))
    assert contact is not None and contact.record_id == str(pid)
    assert not contact.ambiguous
    with fake.lock:
        searches = [r.query for r in fake.requests if r.path == SEARCH]
    assert [(q["term"], q["exact_match"]) for q in searches] == [
        (["+390612345678"], ["true"]),
        (["612345678"], ["false"]),  # national_digits: the significant number
    ]


def test_two_persons_with_the_number_make_an_ambiguous_pop(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    first = fake.add_person("Luca Verdi", "+390612345678")
    second = fake.add_person("Lucia Verdi", "+390612345678")
    contact = make_plugin().lookup_contact("+390612345678", make_call(outcome=None))
    assert contact is not None and contact.ambiguous
    assert {c.record_id for c in contact.candidates} == {str(first), str(second)}
    assert contact.name == "2 persons match"


def test_unknown_numbers_and_extensions_find_nobody(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    plugin = make_plugin()
    assert plugin.lookup_contact("+390298765432", make_call(outcome=None)) is None
    before = fake.count("GET", SEARCH)
    assert plugin.lookup_contact("201", make_call(outcome=None)) is None
    assert fake.count("GET", SEARCH) == before  # an extension is never searched
