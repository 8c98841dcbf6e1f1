"""What every CRM connector does the same way: number forms, the winner among matches, the
call's signature on an activity, the agent's keys for owner maps.

Each of these was first written inside one connector (Salesforce, HubSpot); a third
connector (Zoho) needed them too, so they live here, in the public API, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import phonenumbers

from .models import CallRecord, Contact
from .numbers import digits, is_extension, to_e164

#: The line of an activity's description that says which call it is (``CallRecord.signature``).
SIGNATURE_PREFIX = "callbridge signature: "


def number_forms(number: str, region: str = "IT") -> list[str]:
    """The forms CRM users type a number in, for exact-match searches; each once.

    E.164 (``+390612345678``), international (``+39 06 1234 5678``), national as written
    (``06 1234 5678``), the national digits (``0612345678``), and split after the area code
    only (``06 12345678``, ``+39 06 12345678``). A number that is not a phone number (garbage)
    gives its digits only; an extension gives nothing.
    """
    if is_extension(number):
        return []
    e164 = to_e164(number, region)
    if e164 is None:
        text = digits(number)
        return [text] if text else []
    parsed = phonenumbers.parse(e164)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    forms = [
        e164,
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        national,
        digits(national),
    ]
    # People also split only after the area code or mobile prefix: "02 87654321".
    significant = phonenumbers.national_significant_number(parsed)
    area = phonenumbers.length_of_national_destination_code(parsed)
    subscriber = significant[area:]
    if 0 < area < len(significant):
        prefix = digits(national)[: len(digits(national)) - len(subscriber)]
        forms += [
            f"{prefix} {subscriber}",
            f"+{parsed.country_code} {significant[:area]} {subscriber}",
        ]
    return [f for i, f in enumerate(forms) if f and f not in forms[:i]]


def pick_contact(groups: Iterable[Sequence[Contact]]) -> Contact | None:
    """The match to pop, from confirmed matches grouped by record type, best type first.

    The first non-empty group decides: one record wins; several are a true tie, returned as
    the first with every one as ``candidates`` so the agent chooses (callbridge never guesses
    and logs the call on the wrong record). No match at all gives None.
    """
    for matches in groups:
        if len(matches) == 1:
            return matches[0]
        if matches:
            return matches[0].model_copy(update={"candidates": list(matches)})
    return None


def signature_line(record: CallRecord) -> str:
    """The line to put in an activity's description so that a retry knows it is this call."""
    return f"{SIGNATURE_PREFIX}{record.signature}"


def same_call(description: str | None, record: CallRecord) -> bool:
    """Whether an activity found under the call's key carries ``record``'s signature line.

    A key collision (a reused PBX call id whose earlier activity has the same key) then shows
    as a different signature, and the connector logs this call under its alternate key
    instead of adopting the other call's activity.
    """
    return signature_line(record) in (description or "").splitlines()


__all__ = [
    "SIGNATURE_PREFIX",
    "number_forms",
    "pick_contact",
    "same_call",
    "signature_line",
]
