"""Helpers shared by the MySQL tests (a unique module name: tests/ has no packages)."""

from __future__ import annotations

import json
from typing import Any

from callbridge.mysql import schema, triggers

HOSTILE = [
    "'; DROP TABLE users; --",
    '"; SELECT 1; "',
    "$(touch /tmp/cb_pwned_{tag})",
    "`touch /tmp/cb_pwned_{tag}`",
    "a | touch /tmp/cb_pwned_{tag}",
    "x & touch /tmp/cb_pwned_{tag} ; y",
    "line1\nline2\r\n\\ back\\slash %s %%",
    "Ünïcødé ☎ 🚀",
]


def install(conn: Any, mode: str = "outbox", **kw: Any) -> None:
    """Create the document's tables and our triggers in the connection's database."""
    triggers.apply_statements(conn, schema.schema_statements())
    triggers.apply_statements(conn, triggers.trigger_statements(mode, **kw))


def add_user(
    conn: Any,
    ext: str,
    *,
    company: int = 1,
    name: str = "Mario",
    surname: str = "Rossi",
    email: str | None = None,
) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO users (companyid, username, extension, name, surname, email)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (company, f"u{ext}", ext, name, surname, email or f"{ext}@example.com"),
        )
        return int(cur.lastrowid)


def outbox(conn: Any) -> list[tuple[int, int, dict[str, Any]]]:
    """(id, ssn_event, params) of every outbox row, in id order."""
    with conn.cursor() as cur:
        cur.execute("SELECT id, ssn_event, params FROM callbridge_outbox ORDER BY id")
        return [(int(r[0]), int(r[1]), json.loads(r[2])) for r in cur.fetchall()]
