"""Finding the caller among HubSpot contacts, and choosing when several match.

HubSpot keeps computed, searchable copies of the phone fields
(``hs_searchable_calculated_phone_number`` / ``..._mobile_number``: the national digits,
without formatting or country code), which is what the search matches best. Numbers typed
in odd ways are also tried on ``phone``/``mobilephone`` (exact E.164, and a wildcard token on
the national digits). Search is broad on purpose; every hit is confirmed here with
``same_number`` on the contact's own fields, so a national-digits collision between two
countries never pops the wrong person.

Several confirmed matches are resolved by activity (see ``choose``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from callbridge import digits, national_digits, same_number, to_e164

from .api import Record

PROPERTIES = [
    "firstname",
    "lastname",
    "email",
    "company",
    "phone",
    "mobilephone",
    "hubspot_owner_id",
    "notes_last_contacted",
    "lastmodifieddate",
]
PHONE_FIELDS = ("phone", "mobilephone")


def filter_groups(number: str, region: str) -> list[dict[str, Any]]:
    """The OR-ed filter groups for one number (HubSpot allows five groups)."""
    national = national_digits(number, region)
    e164 = to_e164(number, region)
    forms = [national]
    if e164:
        # Italian numbers keep their leading zero inside the national number; HubSpot's
        # computed digits may or may not carry it, so both forms are searched.
        significant = phonenumbers.national_significant_number(phonenumbers.parse(e164))
        if significant != national:
            forms.append(significant)
    groups: list[dict[str, Any]] = []

    def add(prop: str, op: str, value: str) -> None:
        groups.append({"filters": [{"propertyName": prop, "operator": op, "value": value}]})

    for prop in ("hs_searchable_calculated_phone_number", "hs_searchable_calculated_mobile_number"):
        if len(forms) == 1:
            add(prop, "EQ", national)
        else:
            groups.append({"filters": [{"propertyName": prop, "operator": "IN", "values": forms}]})
    if e164:
        add("phone", "EQ", e164)
        add("mobilephone", "EQ", e164)
    add("phone", "CONTAINS_TOKEN", f"*{national}")
    return groups


def confirmed(records: list[Record], number: str, region: str) -> list[Record]:
    """Only the records whose phone or mobile really is ``number``, each once."""
    seen: set[str] = set()
    result = []
    for record in records:
        if record.id in seen:
            continue
        for field in PHONE_FIELDS:
            value = record.properties.get(field)
            if value and digits(value) and same_number(value, number, region):
                seen.add(record.id)
                result.append(record)
                break
    return result


def parse_time(value: str | None) -> datetime | None:
    """HubSpot dates come as ISO 8601 or epoch milliseconds; None when absent or odd."""
    if not value:
        return None
    text = value.strip()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class Choice:
    """The outcome of ``choose``: one winner, or candidates for the agent."""

    winner: Record | None
    candidates: list[Record]


def _stamp(record: Record, prop: str) -> float | None:
    moment = parse_time(record.properties.get(prop))
    return moment.timestamp() if moment else None


def _clearly_newer(a: float | None, b: float | None, margin: float) -> bool | None:
    """True: a wins; False: b wins; None: too close (or both unknown) to tell."""
    if a is None and b is None:
        return None
    if b is None:
        return True
    if a is None:
        return False
    if a - b >= margin and a > b:
        return True
    if b - a >= margin and b > a:
        return False
    return None


def activity_key(record: Record) -> tuple[float, float]:
    """Sort key: last contacted, then last modified (missing = oldest)."""
    contacted = _stamp(record, "notes_last_contacted")
    modified = _stamp(record, "lastmodifieddate")
    return (
        contacted if contacted is not None else float("-inf"),
        modified if modified is not None else float("-inf"),
    )


def choose(matches: list[Record], margin: float) -> Choice:
    """The rule for several matching contacts.

    Sort by last contact (``notes_last_contacted``), then last change (``lastmodifieddate``).
    The first wins only when it is *clearly* more recent than the runner-up: its last contact
    is newer by at least ``margin`` seconds, or, when the last contacts are too close or both
    unknown, its last change is. Otherwise the pop is ambiguous and lists every match, most
    recent first, for the agent to pick (bulk imports and workflows touch many records
    within minutes, so a near tie says nothing about who is calling).
    """
    if not matches:
        return Choice(None, [])
    ordered = sorted(matches, key=lambda r: (activity_key(r), r.id), reverse=True)
    if len(ordered) == 1:
        return Choice(ordered[0], [])
    first, second = ordered[0], ordered[1]
    verdict = _clearly_newer(
        _stamp(first, "notes_last_contacted"), _stamp(second, "notes_last_contacted"), margin
    )
    if verdict is None:
        verdict = _clearly_newer(
            _stamp(first, "lastmodifieddate"), _stamp(second, "lastmodifieddate"), margin
        )
    if verdict is True:
        return Choice(first, [])
    return Choice(None, ordered)


def display_name(record: Record) -> str:
    """``First Last``, else the e-mail, else the phone."""
    props = record.properties
    name = " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
    return name or props.get("email") or props.get("phone") or f"Contact {record.id}"
