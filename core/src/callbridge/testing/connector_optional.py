"""The optional capabilities of the connector contract: tested when the plugin has the hook.

``ConnectorTests`` inherits these; a connector without ``search_contacts``,
``create_contact`` or ``update_call`` sees them skip with a reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from ..errors import PermanentError, RetryLater
from ..models import ActivityRef, Contact, ContactDraft, WrapUp
from .records import make_call

if TYPE_CHECKING:
    from ..models import CallRecord
    from .connector import LoadedConnector


class OptionalCapabilityTests:
    """Search, create and amend: the agent's wrap-up needs them where the CRM offers them."""

    if TYPE_CHECKING:  # given by ``ConnectorTests``, which these tests are part of
        search_query: str | None
        new_contact_number: str

        def crm_succeeds(self) -> None: ...

        def crm_lookup_fails(self) -> None: ...

        def finished_record(self, name: str) -> CallRecord: ...

        def activity_count(self, record: CallRecord) -> int: ...

    def test_search_contacts_finds_records_and_raises_on_failure(
        self, loaded_connector: LoadedConnector
    ) -> None:
        """What an agent types finds valid contacts, nonsense finds none, a failure raises."""
        if not loaded_connector.has("search_contacts") or self.search_query is None:
            pytest.skip("needs search_contacts and a search_query")
        self.crm_succeeds()
        found = loaded_connector.search_contacts(self.search_query)
        assert isinstance(found, list), f"search returned {found!r}"
        assert found, f"searching {self.search_query!r} found nothing"
        for contact in found:
            assert isinstance(contact, Contact), f"search returned {contact!r}"
            check_contact(contact)
        assert loaded_connector.search_contacts("zzqxnobodyzzqx") == []
        try:
            self.crm_lookup_fails()
        except pytest.skip.Exception:
            return  # a CRM that cannot fail (the directory): the rest was checked
        try:
            with pytest.raises((RetryLater, PermanentError)):
                loaded_connector.search_contacts(self.search_query)
        finally:
            self.crm_succeeds()

    def test_create_contact_makes_a_record_the_lookup_finds(
        self, loaded_connector: LoadedConnector
    ) -> None:
        """A contact created for an unknown number is a valid Contact the lookup finds."""
        if not loaded_connector.has("create_contact"):
            pytest.skip("the plugin does not implement create_contact")
        self.crm_succeeds()
        draft = ContactDraft(name="Nuova Cliente", number=self.new_contact_number)
        made = loaded_connector.create_contact(draft)
        assert isinstance(made, Contact), f"create_contact returned {made!r}"
        check_contact(made)
        if loaded_connector.has("lookup_contact"):
            call = make_call(outcome=None, remote_e164=self.new_contact_number)
            found = loaded_connector.lookup_contact(self.new_contact_number, call)
            assert isinstance(found, Contact), f"the new contact was not found: {found!r}"
            assert found.record_id == made.record_id

    def test_update_call_amends_the_activity_without_a_second_one(
        self, loaded_connector: LoadedConnector
    ) -> None:
        """``update_call`` with a wrap-up, twice (a retry): still one activity, a ref back."""
        if not loaded_connector.has("update_call"):
            pytest.skip("the plugin does not implement update_call")
        record = self.finished_record(loaded_connector.name)
        self.crm_succeeds()
        ref = loaded_connector.log_call(record)
        if not isinstance(ref, ActivityRef):
            pytest.skip("log_call returned no ActivityRef for this record: nothing to amend")
        wrapup = WrapUp(
            call_key=record.call.key, revision=1, notes="callbridge wrap-up test",
            saved_at=record.call.end_at or datetime.now(UTC),
        )  # fmt: skip
        amended = record.model_copy(update={"wrapup": wrapup})
        for _ in range(2):
            result = loaded_connector.update_call(amended, ref, 1)
            assert result is None or isinstance(result, ActivityRef), f"returned {result!r}"
        assert self.activity_count(record) == 1


def check_contact(contact: Contact) -> None:
    """The connector-independent fields every pop and agent page relies on."""
    assert contact.record_id.strip(), "Contact.record_id is empty"
    assert contact.name.strip(), "Contact.name is empty"
    assert contact.record_type.strip(), "Contact.record_type is empty"
    if contact.url is not None:
        assert contact.url.startswith(("https://", "http://")), f"bad url {contact.url!r}"
    for number in contact.numbers:
        assert number.strip(), "Contact.numbers holds an empty number"
