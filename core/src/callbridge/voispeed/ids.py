"""VOIspeed identifiers and callbridge's external ids.

The document shows identifiers (user call id, device id, ...) as 8-character strings such as
``000012A0``: hexadecimal, upper case, zero-padded. The monitor tables store the same values
as integers, so a MySQL trigger sends ``LPAD(HEX(id), 8, '0')``. We accept 1-8 hex digits in
any case and normalise to the canonical form so that ``12a0`` and ``000012A0`` are one call.
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
