"""VOIspeed identifiers and callbridge's external ids.

The document shows identifiers (user call id, device id, ...) as 8-character strings such as
``000012A0``: hexadecimal, upper case, zero-padded. The monitor tables store the same values
as integers, so a MySQL trigger sends ``LPAD(HEX(id), 8, '0')``. ``normalize_id`` (for what
the PBX sends) accepts 1-8 hex digits in any case and normalises to the canonical form so that
``12a0`` and ``000012A0`` are one call.

What a person types (CLI options, API fields) goes through ``parse_user_id``, which refuses to
guess: ``4768`` copied from a monitor table is user call 4768 = ``000012A0``, while read as hex
it is ``00004768``, another call. Eight characters are taken as they are (the PBX's form);
fewer digits need a letter A-F, or an explicit form: ``0x4768``/``hex:4768`` (hexadecimal) or
``dec:4768`` (a monitor table's decimal integer). A short all-digit id whose two readings
differ is refused with both readings; one whose readings agree (``0`` to ``9``) is taken.
"""

from __future__ import annotations

import re
import secrets
import string

_HEX = re.compile(r"[0-9A-Fa-f]{1,8}")
#: The monitor tables declare ``externalid varchar(40)``.
EXTERNAL_ID_MAX = 40
#: Characters safe in a URL path or query, in XML text and in a SQL string literal.
_EXTERNAL_ID_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_.")


class InvalidIdentifier(ValueError):
    """An identifier that is not 1-8 hexadecimal digits, or a bad external id."""


def normalize_id(value: str | int) -> str:
    """Return the canonical 8-character form of a PBX identifier, or raise InvalidIdentifier."""
    if isinstance(value, int):
        if not 0 <= value <= 0xFFFFFFFF:
            raise InvalidIdentifier(f"identifier {value} is out of range")
        return f"{value:08X}"
    text = value.strip()
    if not _HEX.fullmatch(text):
        raise InvalidIdentifier(
            f"expected 1-8 hexadecimal digits such as 000012A0, got {text!r:.40}"
        )
    return text.upper().zfill(8)


class AmbiguousIdentifier(InvalidIdentifier):
    """A short all-digit identifier that reads differently as hexadecimal and as decimal."""

    def __init__(self, text: str, as_hex: str, as_decimal: str) -> None:
        super().__init__(
            f"{text!r} is ambiguous: as the PBX's hexadecimal form it is {as_hex}, as a decimal "
            f"id from a monitor table it is {as_decimal}; write {as_hex} (or 0x{text}) or "
            f"dec:{text}"
        )
        self.text = text
        self.as_hex = as_hex
        self.as_decimal = as_decimal


_DECIMAL = re.compile(r"[0-9]{1,10}")


def parse_user_id(value: str | int) -> str:
    """An identifier a person typed, in canonical form; refuses to guess (see the module).

    Raises AmbiguousIdentifier for a short all-digit id whose hex and decimal readings
    differ, InvalidIdentifier for anything else that is not an id.
    """
    if isinstance(value, int):
        return normalize_id(value)
    text = value.strip()
    lowered = text.lower()
    if lowered.startswith("dec:"):
        digits = text[4:].strip()
        if not _DECIMAL.fullmatch(digits):
            raise InvalidIdentifier(f"dec: takes a decimal number, got {digits!r:.40}")
        return normalize_id(int(digits))
    for prefix in ("0x", "hex:"):
        if lowered.startswith(prefix):
            return normalize_id(text[len(prefix) :].strip())
    canonical = normalize_id(text)
    if len(text) < 8 and text.isdigit() and int(text, 10) != int(text, 16):
        decimal = int(text, 10)
        as_decimal = normalize_id(decimal) if decimal <= 0xFFFFFFFF else "out of range"
        raise AmbiguousIdentifier(text, canonical, as_decimal)
    return canonical


def new_external_id(prefix: str = "cb") -> str:
    """Make a fresh external id: unique, URL- and XML-safe, at most 40 characters.

    ``cb-`` plus 26 hexadecimal characters (104 random bits): collisions are not a concern
    and the id needs no escaping anywhere it travels (SOAP, query strings, SQL literals).
    """
    token = secrets.token_hex(13)  # 26 hex characters, 104 bits
    result = f"{prefix}-{token}" if prefix else token
    return validate_external_id(result)


def validate_external_id(value: str) -> str:
    """Check a caller-supplied external id: 1-40 characters of ``[A-Za-z0-9._-]``."""
    if not value or len(value) > EXTERNAL_ID_MAX:
        raise InvalidIdentifier(f"external id must have 1-{EXTERNAL_ID_MAX} characters")
    if not set(value) <= _EXTERNAL_ID_ALPHABET:
        raise InvalidIdentifier("external id may contain only letters, digits, '.', '_' and '-'")
    return value
