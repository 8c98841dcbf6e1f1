"""Finding a caller in Zoho: exact searches on the forms a number is typed in, then a strict
confirmation, then the module priority.

Zoho's search ``criteria`` compares a phone field's text as stored (``equals``), so the
number is searched in each form users type (``+390612345678``, ``+39 06 1234 5678``,
``06 1234 5678``, ``0612345678``: ``callbridge.number_forms``), OR-ed, at most ten
conditions a request (Zoho's limit). Every hit is confirmed with ``same_number`` on the
record's own phone fields. Contacts beat Leads beat Accounts (``CALLBRIDGE_ZOHO_MODULES``);
several records of the best module are a tie the agent resolves (``pick_contact``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from callbridge import Contact, same_number

#: Phone fields searched in each module (Zoho's API names).
PHONE_FIELDS: dict[str, tuple[str, ...]] = {
    "Contacts": ("Phone", "Mobile"),
    "Leads": ("Phone", "Mobile"),
    "Accounts": ("Phone",),
}
#: Fields read back for each module (besides the phone fields).
FIELDS: dict[str, tuple[str, ...]] = {
    "Contacts": ("Full_Name", "First_Name", "Last_Name", "Email", "Account_Name", "Owner"),
    "Leads": ("Full_Name", "First_Name", "Last_Name", "Email", "Company", "Owner"),
    "Accounts": ("Account_Name", "Owner"),
}
#: Zoho allows at most this many conditions in one search criteria.
MAX_CONDITIONS = 10
#: The record type of each module in a Contact (and in the activity's relations).
RECORD_TYPES = {"Contacts": "Contact", "Leads": "Lead", "Accounts": "Account"}
MODULES = {v: k for k, v in RECORD_TYPES.items()}


def escape(value: str) -> str:
    """A criteria value: Zoho's special characters ``( ) ,`` and the backslash escaped."""
    out = value.replace("\\", "\\\\")
    for char in "(),":
        out = out.replace(char, "\\" + char)
    return out


def criteria(module: str, forms: Sequence[str]) -> Iterator[str]:
    """``((Phone:equals:a)or(Mobile:equals:a)or...)``, in as many requests as the limit asks."""
    conditions = [
        f"({field}:equals:{escape(form)})" for form in forms for field in PHONE_FIELDS[module]
    ]
    for start in range(0, len(conditions), MAX_CONDITIONS):
        chunk = conditions[start : start + MAX_CONDITIONS]
        yield chunk[0] if len(chunk) == 1 else "(" + "or".join(chunk) + ")"


def search_fields(module: str) -> list[str]:
    """The ``fields`` parameter of a module's search."""
    return [*PHONE_FIELDS[module], *FIELDS[module]]


def _name(value: Any) -> str | None:
    """A lookup field (``{"name": ..., "id": ...}``) or a text field, as text."""
    if isinstance(value, dict):
        value = value.get("name")
    return str(value).strip() or None if value else None


def display_name(module: str, record: dict[str, Any]) -> str:
    """The record's name as Zoho shows it, else its e-mail, else its id."""
    if module == "Accounts":
        name = _name(record.get("Account_Name"))
    else:
        name = _name(record.get("Full_Name")) or " ".join(
            p for p in (record.get("First_Name"), record.get("Last_Name")) if p
        )
    return name or _name(record.get("Email")) or f"{RECORD_TYPES[module]} {record.get('id')}"


def company(module: str, record: dict[str, Any]) -> str | None:
    """The company to show: the Contact's Account, the Lead's Company, the Account itself."""
    if module == "Contacts":
        return _name(record.get("Account_Name"))
    if module == "Leads":
        return _name(record.get("Company"))
    return None


def account_id(record: dict[str, Any]) -> str | None:
    """The id of a Contact's Account (the Call's What_Id), when it has one."""
    value = record.get("Account_Name")
    return str(value["id"]) if isinstance(value, dict) and value.get("id") else None


def matching_phones(module: str, record: dict[str, Any], number: str, region: str) -> list[str]:
    """The record's phone values; empty unless one of them really is ``number``."""
    phones = [str(record[f]) for f in PHONE_FIELDS[module] if record.get(f)]
    return phones if any(same_number(p, number, region) for p in phones) else []


def to_contact(module: str, record: dict[str, Any], phones: list[str], url: str | None) -> Contact:
    """The callbridge Contact for a confirmed Zoho record."""
    owner = record.get("Owner")
    owner_id = str(owner["id"]) if isinstance(owner, dict) and owner.get("id") else None
    return Contact(
        connector="zoho",
        record_type=RECORD_TYPES[module],
        record_id=str(record["id"]),
        name=display_name(module, record),
        company=company(module, record),
        url=url,
        owner_id=owner_id,
        numbers=phones,
    )
