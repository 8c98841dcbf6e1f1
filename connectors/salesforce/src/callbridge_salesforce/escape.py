"""Escaping for SOSL search terms and SOQL string literals (simple-salesforce has neither).

A phone number typed by a person can carry ``+``, ``(``, ``-`` and worse; a call key carries
``:``. Unescaped, these either break the query (MALFORMED_QUERY) or change its meaning.
"""

from __future__ import annotations

import re

_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

#: Characters SOSL reserves inside ``FIND {...}``; each must be preceded by a backslash.
SOSL_RESERVED = frozenset("&|!(){}[]^\"~*?:\\'+-")

_SOQL_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def sosl_escape(term: str) -> str:
    """``term`` with every SOSL reserved character backslash-escaped."""
    return "".join("\\" + c if c in SOSL_RESERVED else c for c in term)


def soql_quote(value: str) -> str:
    """``value`` as a quoted SOQL string literal: ``'it\\'s'``."""
    return "'" + "".join(_SOQL_ESCAPES.get(c, c) for c in value) + "'"


def select_ids(
    object_name: str,
    equals: dict[str, str | bool],
    limit: int = 1,
    fields: tuple[str, ...] = ("Id",),
) -> str:
    """``SELECT Id FROM <object> WHERE a = 'x' AND b = true LIMIT n``, every value quoted.

    The one place SOQL is assembled: names are checked to be API names, values are quoted,
    so nothing a caller or the PBX sends can change the query. ``fields`` selects more than
    the Id.
    """
    names = [object_name, *equals, *fields]
    if not fields or not all(_API_NAME.match(name) for name in names):
        raise ValueError(f"not Salesforce API names: {names!r}")
    conditions = " AND ".join(f"{name} = {_literal(value)}" for name, value in equals.items())
    columns = ", ".join(fields)
    return f"SELECT {columns} FROM {object_name} WHERE {conditions} LIMIT {int(limit)}"  # noqa: S608


def _literal(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return soql_quote(value)
