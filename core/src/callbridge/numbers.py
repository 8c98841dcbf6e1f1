"""Phone numbers: one normalisation, used by the tracker, the directory and every connector.

CRMs store numbers in every format people type; the PBX sends what the line gave it. We
compare in E.164, parsing national numbers in ``CALLBRIDGE_DEFAULT_REGION``. Short internal
extensions are not phone numbers and stay as they are.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

#: Numbers with fewer digits than this are treated as internal extensions.
MIN_EXTERNAL_DIGITS = 6


def digits(number: str) -> str:
    """Only the digits of ``number`` (what a CRM's phone search wants)."""
    return "".join(c for c in number if c.isdigit())


def is_extension(number: str) -> bool:
    """True for short internal numbers such as ``201``."""
    d = digits(number)
    return 0 < len(d) < MIN_EXTERNAL_DIGITS and not number.strip().startswith("+")


@lru_cache(maxsize=65_536)
def to_e164(number: str, region: str = "IT") -> str | None:
    """E.164 form of ``number`` (``+390612345678``), or None when it is not a phone number.

    ``00`` international prefixes are understood; extensions and garbage give None.
    """
    text = number.strip()
    if not text or is_extension(text):
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def national_digits(number: str, region: str = "IT") -> str:
    """The national significant number's digits (HubSpot's searchable phone form)."""
    e164 = to_e164(number, region)
    if e164 is None:
        return digits(number)
    return str(phonenumbers.parse(e164).national_number)


def same_number(a: str, b: str, region: str = "IT") -> bool:
    """Whether two numbers are the same line, after normalisation."""
    ea, eb = to_e164(a, region), to_e164(b, region)
    if ea is not None and eb is not None:
        return ea == eb
    return digits(a) != "" and digits(a) == digits(b)
