"""Checks of SOAP command arguments: each value is valid text, an id, a dial string...

A malformed value raises ``InvalidRequest`` naming the element, before anything is sent.
"""

from __future__ import annotations

import re
from typing import TypeVar

from .codes import CallableType, CrudAction, CrudEntityType, GatewayType
from .ids import (
    InvalidIdentifier,
    new_external_id,
    parse_user_id,
    validate_external_id,
)
from .soap_types import MAX_FIELD_LENGTH, InvalidRequest

# Characters XML 1.0 allows, minus CR (a parser turns it into LF, so it would not round-trip).
_XML_TEXT = re.compile("[\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
_DIAL_SEPARATORS = re.compile(r"[\s\-./()]")
_DIAL_STRING = re.compile(r"\+?[0-9*#]{1,32}")


# --- argument checks ---------------------------------------------------------------------


def _text(name: str, value: str, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(name, f"expected text, got {type(value).__name__}")
    text = value.strip()
    if required and not text:
        raise InvalidRequest(name, "must not be empty")
    if len(text) > MAX_FIELD_LENGTH:
        raise InvalidRequest(name, f"longer than {MAX_FIELD_LENGTH} characters")
    if not _XML_TEXT.fullmatch(text):
        raise InvalidRequest(name, "contains control characters XML cannot carry")
    return text


def _user(name: str, value: str) -> str:
    """A PBX user such as ``auth-mario@acme``: sent as given (the document's own placeholder,
    ``auth-First name@domain``, does not rule out spaces), but never empty."""
    return _text(name, value)


def _id(name: str, value: str | int) -> str:
    """An identifier: an int as its value; text as ``parse_user_id`` reads it (8 characters
    as given; a short all-digit id whose hex and decimal readings differ is refused)."""
    try:
        return parse_user_id(value)
    except InvalidIdentifier as exc:
        raise InvalidRequest(name, str(exc)) from None
    except (TypeError, AttributeError):
        raise InvalidRequest(name, "expected an identifier such as 000012A0") from None


def _number(name: str, value: str, *, required: bool = True) -> str:
    """A dial string: digits, ``*``, ``#``, an optional leading ``+``; separators removed."""
    text = _text(name, value, required=required)
    if not text:
        return ""
    compact = _DIAL_SEPARATORS.sub("", text)
    if not _DIAL_STRING.fullmatch(compact):
        raise InvalidRequest(
            name, f"expected a number of up to 32 digits, '*', '#', leading '+'; got {text!r:.40}"
        )
    return compact


def _external_id(name: str, value: str | None) -> str:
    if value is None:
        return new_external_id()
    try:
        return validate_external_id(value)
    except InvalidIdentifier as exc:
        raise InvalidRequest(name, str(exc)) from None


_E = TypeVar("_E", CallableType, CrudAction, CrudEntityType, GatewayType)


def _enum(name: str, kind: type[_E], value: _E | int) -> _E:
    try:
        return kind(value)
    except (ValueError, TypeError):
        names = ", ".join(f"{m.value}={m.name.lower()}" for m in kind)
        raise InvalidRequest(name, f"expected one of {names}; got {value!r:.20}") from None


def _code(value: int) -> str:
    return str(int(value))
