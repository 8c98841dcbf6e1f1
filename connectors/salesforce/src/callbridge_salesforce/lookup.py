"""Finding a caller: one SOSL phone search, then a strict client-side confirmation.

SOSL's phone search is fuzzy (it tokenises digits), so every hit is confirmed by comparing
normalised numbers. The search uses the forms a number is commonly stored in (international
digits and national digits), joined with OR, each escaped. Among confirmed hits the object
priority decides; several hits of the best object are a true tie, reported with candidates so
the agent chooses instead of callbridge guessing (and logging on the wrong record).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from callbridge import Contact, digits, is_extension, pick_contact, same_number, to_e164

from .escape import sosl_escape
from .urls import record_url

#: Phone fields of each object, as SOSL returns them.
PHONE_FIELDS: dict[str, tuple[str, ...]] = {
    "Contact": ("Phone", "MobilePhone", "HomePhone", "OtherPhone", "AssistantPhone"),
    "Lead": ("Phone", "MobilePhone"),
    "Account": ("Phone",),
}

#: Extra fields (besides Id, Name, OwnerId and the phone fields) and filters per object.
_EXTRA: dict[str, tuple[tuple[str, ...], str]] = {
    "Contact": (("AccountId", "Account.Name"), ""),
    "Lead": (("Company",), " WHERE IsConverted = false"),
    "Account": ((), ""),
}

#: Records per object SOSL returns; more than a handful means a shared switchboard number.
_LIMIT = 20


@dataclass(frozen=True)
class LookupResult:
    """The chosen contact (possibly ambiguous) and what else the search taught us."""

    contact: Contact | None
    #: Contact Id -> AccountId, for the Task's WhatId.
    accounts: dict[str, str] = field(default_factory=dict)


def search_terms(number: str, region: str) -> list[str]:
    """Digit strings to search: the E.164 digits and the national digits, deduplicated."""
    if is_extension(number):
        return []
    terms: list[str] = []
    e164 = to_e164(number, region)
    if e164 is not None:
        parsed = phonenumbers.parse(e164)
        terms.append(digits(e164))
        terms.append(
            digits(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL))
        )
    else:
        terms.append(digits(number))
    return [t for i, t in enumerate(terms) if len(t) >= 2 and t not in terms[:i]]


def build_sosl(terms: Sequence[str], objects: Sequence[str], scope: str = "PHONE") -> str:
    """``FIND {a OR b} IN PHONE FIELDS RETURNING Contact(...), ...`` with escaped terms
    (``scope="NAME"``: in name fields, for what an agent types)."""
    find = " OR ".join(sosl_escape(t) for t in terms)
    returning = []
    for name in objects:
        extra, where = _EXTRA[name]
        fields = ", ".join(("Id", "Name", "OwnerId", *PHONE_FIELDS[name], *extra))
        returning.append(f"{name}({fields}{where} LIMIT {_LIMIT})")
    return f"FIND {{{find}}} IN {scope} FIELDS RETURNING {', '.join(returning)}"


def _contact(record: Mapping[str, Any], number: str, region: str, base: str) -> Contact | None:
    """A Contact for ``record`` when one of its phone fields really is ``number``."""
    found = as_contact(record, base)
    if not any(same_number(p, number, region) for p in found.numbers):
        return None
    return found


def as_contact(record: Mapping[str, Any], base: str) -> Contact:
    """A SOSL or SOQL row (Contact, Lead or Account) as a ``Contact``."""
    object_name = str(record.get("attributes", {}).get("type", ""))
    phones = [str(record[f]) for f in PHONE_FIELDS.get(object_name, ()) if record.get(f)]
    company: str | None = None
    if object_name == "Contact" and isinstance(record.get("Account"), Mapping):
        company = record["Account"].get("Name")
    elif object_name == "Lead":
        company = record.get("Company")
    record_id = str(record["Id"])
    return Contact(
        connector="salesforce",
        record_type=object_name,
        record_id=record_id,
        name=str(record.get("Name") or record_id),
        company=company or None,
        url=record_url(base, object_name, record_id),
        owner_id=record.get("OwnerId") or None,
        numbers=phones,
    )


def choose(
    result: Mapping[str, Any] | None,
    number: str,
    *,
    region: str,
    objects: Sequence[str],
    lightning_base: str,
) -> LookupResult:
    """The best confirmed match in a ``sf.search()`` result, by object priority."""
    records = list((result or {}).get("searchRecords") or [])
    by_object: dict[str, list[Contact]] = {name: [] for name in objects}
    accounts: dict[str, str] = {}
    seen: set[str] = set()
    for record in records:
        contact = _contact(record, number, region, lightning_base)
        if contact is None or contact.record_id in seen:
            continue
        seen.add(contact.record_id)
        if contact.record_type == "Contact" and record.get("AccountId"):
            accounts[contact.record_id] = str(record["AccountId"])
        if contact.record_type in by_object:
            by_object[contact.record_type].append(contact)
    return LookupResult(pick_contact(by_object[name] for name in objects), accounts)


def name_terms(query: str) -> list[str]:
    """The words of what an agent typed that SOSL can search (two characters or more)."""
    return [w for w in query.split() if len(w) >= 2][:5]


def found_by_name(
    result: Mapping[str, Any] | None, terms: Sequence[str], base: str, limit: int
) -> tuple[list[Contact], dict[str, str]]:
    """The rows of a name search holding every term (SOSL ORs them), and their Accounts."""
    contacts: list[Contact] = []
    accounts: dict[str, str] = {}
    for record in (result or {}).get("searchRecords") or []:
        contact = as_contact(record, base)
        text = f"{contact.name} {contact.company or ''}".lower()
        if not all(t.lower() in text for t in terms) or len(contacts) >= limit:
            continue
        contacts.append(contact)
        if contact.record_type == "Contact" and record.get("AccountId"):
            accounts[contact.record_id] = str(record["AccountId"])
    return contacts, accounts
