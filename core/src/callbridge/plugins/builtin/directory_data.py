"""The directory's data: its SQLite schema, the demo's sample contacts, and CSV import rows.

Kept apart from the plugin (``directory.py``) so that the plugin file reads as hooks and
queries; nothing here touches a database.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA_VERSION = 3


_SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    company TEXT,
    owner_extension TEXT,
    email TEXT,
    source TEXT NOT NULL DEFAULT 'api',
    source_key TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (source, source_key)
);
CREATE TABLE IF NOT EXISTS contact_numbers (
    contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    raw TEXT NOT NULL,
    e164 TEXT NOT NULL,
    PRIMARY KEY (contact_id, e164)
);
CREATE INDEX IF NOT EXISTS contact_numbers_e164 ON contact_numbers(e164);
CREATE TABLE IF NOT EXISTS activities (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    call_key TEXT NOT NULL,
    direction TEXT NOT NULL,
    remote_number TEXT,
    local_extension TEXT,
    ring_at TEXT,
    answer_at TEXT,
    end_at TEXT,
    duration_s INTEGER NOT NULL DEFAULT 0,
    outcome TEXT,
    hung_up_by TEXT,
    contact_id INTEGER,
    owner_extension TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS activities_call_key ON activities(call_key);
"""

#: Version 2: the agent's wrap-up on the activity (notes, the outcome the agent chose, a
#: related record, and the revision written, so a repeated update changes nothing).
_UPGRADES: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE activities ADD COLUMN notes TEXT",
        "ALTER TABLE activities ADD COLUMN disposition TEXT",
        "ALTER TABLE activities ADD COLUMN related TEXT",
        "ALTER TABLE activities ADD COLUMN wrapup_revision INTEGER NOT NULL DEFAULT 0",
    ),
    # Version 3: the link to the call's recording (CALLBRIDGE_RECORDINGS__URL_TEMPLATE).
    3: ("ALTER TABLE activities ADD COLUMN recording_url TEXT",),
}

#: The outcomes the directory offers the wrap-up form (a CRM has its own list).
DISPOSITIONS = ("interested", "call back", "not interested", "wrong number", "left voicemail")


def upgrade(db: sqlite3.Connection, version: int) -> None:
    """Create the tables of a new file and run the upgrades ``version`` has not seen."""
    db.executescript(_SCHEMA)
    for step in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
        for statement in _UPGRADES[step]:
            db.execute(statement)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def activity_from_row(row: sqlite3.Row) -> DirectoryActivity:
    """A row of ``activities`` (joined with its contact's name) as a ``DirectoryActivity``."""
    return DirectoryActivity(
        id=row["id"],
        idempotency_key=row["idempotency_key"],
        call_key=row["call_key"],
        direction=row["direction"],
        remote_number=row["remote_number"],
        local_extension=row["local_extension"],
        ring_at=_parse_time(row["ring_at"]),
        answer_at=_parse_time(row["answer_at"]),
        end_at=_parse_time(row["end_at"]),
        duration_s=row["duration_s"],
        outcome=row["outcome"],
        hung_up_by=row["hung_up_by"],
        contact_id=row["contact_id"],
        contact_name=row["contact_name"],
        owner_extension=row["owner_extension"],
        created_at=datetime.fromisoformat(row["created_at"]),
        notes=row["notes"],
        disposition=row["disposition"],
        related=row["related"],
        wrapup_revision=row["wrapup_revision"],
        recording_url=row["recording_url"],
    )


#: CSV columns; ``numbers`` holds several numbers separated by ``;``.
CSV_REQUIRED = ("name", "numbers")
CSV_OPTIONAL = ("company", "owner_extension", "email", "id")

#: Contacts for the demo: Italian and European numbers written the ways people write them.
#: Two people share the Bianchi Logistica switchboard, to show an ambiguous match.
SAMPLE_CONTACTS: tuple[tuple[str, str | None, tuple[str, ...], str | None, str | None], ...] = (
    (
        "Mario Rossi",
        "Rossi Impianti Srl",
        ("+39 06 1234 5678", "347 123 4567"),
        "201",
        "mario.rossi@rossi-impianti.example",
    ),
    (
        "Giulia Bianchi",
        "Bianchi Logistica SpA",
        ("02 8765 4321", "+39 333 765 4321"),
        "202",
        "giulia.bianchi@bianchilogistica.example",
    ),
    (
        "Luca Bianchi",
        "Bianchi Logistica SpA",
        ("0039 02 87654321",),
        "202",
        "luca.bianchi@bianchilogistica.example",
    ),
    (
        "Francesca Romano",
        "Studio Romano",
        ("(+39) 011-555-0101", "340.987.6543"),
        "203",
        "f.romano@studioromano.example",
    ),
    ("Alessandro Conti", "Conti & Figli", ("+39 055 123456",), "201", None),
    ("Chiara Esposito", None, ("+393391234567",), "203", "chiara.esposito@example.org"),
    ("Marco Ricci", "Ricci Costruzioni", ("081 765 4321", "+39 320 111 2233"), "202", None),
    ("Sofia Greco", "Farmacia Greco", ("0039 091 6543210",), "201", "info@farmaciagreco.example"),
    (
        "Hans Müller",
        "Müller Maschinenbau GmbH",
        ("+49 30 12345678", "0049 171 2345678"),
        "203",
        "h.mueller@mueller-maschinenbau.example",
    ),
    (
        "Camille Dubois",
        "Dubois Conseil SARL",
        ("+33 1 42 68 53 00",),
        "201",
        "camille@duboisconseil.example",
    ),
    ("Oliver Smith", "Smith & Partners Ltd", ("+44 20 7946 0958",), "202", None),
    (
        "Lucía García",
        "García Distribuciones SL",
        ("+34 912 34 56 78",),
        "203",
        "lucia.garcia@garciadistribuciones.example",
    ),
)


class DirectoryImportError(ValueError):
    """A contacts file has errors; the message lists each one with its line."""


@dataclass(frozen=True)
class DirectoryContact:
    """A row of the directory, with its numbers in E.164."""

    id: int
    name: str
    company: str | None
    owner_extension: str | None
    email: str | None
    numbers: list[str]


@dataclass(frozen=True)
class DirectoryActivity:
    """One logged call, as ``list_activities`` returns it."""

    id: int
    idempotency_key: str
    call_key: str
    direction: str
    remote_number: str | None
    local_extension: str | None
    ring_at: datetime | None
    answer_at: datetime | None
    end_at: datetime | None
    duration_s: int
    outcome: str | None
    hung_up_by: str | None
    contact_id: int | None
    contact_name: str | None
    owner_extension: str | None
    created_at: datetime
    #: The agent's wrap-up: notes, chosen outcome, related record (``type:id``), revision.
    notes: str | None = None
    disposition: str | None = None
    related: str | None = None
    wrapup_revision: int = 0
    #: The link to the call's recording, when the PBX recorded it.
    recording_url: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _clean(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


#: One checked CSV row: name, (E.164, as written) numbers, company, owner, e-mail, key.
CsvRow = tuple[str, list[tuple[str, str]], str | None, str | None, str | None, str]


def read_csv(
    file: Path, normalise: Callable[[Iterable[str]], list[tuple[str, str]]]
) -> list[CsvRow]:
    with file.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [(h or "").strip().lower() for h in reader.fieldnames or []]
        missing = [column for column in CSV_REQUIRED if column not in header]
        if missing:
            raise DirectoryImportError(
                f"{file}: missing column(s) {', '.join(missing)}; the header must name "
                f"{', '.join(CSV_REQUIRED + CSV_OPTIONAL[:-1])}"
            )
        reader.fieldnames = header
        rows = []
        errors: list[str] = []
        keys: dict[str, int] = {}
        for record in reader:
            line = reader.line_num
            values = {
                k: _clean(v) for k, v in record.items() if isinstance(k, str) and isinstance(v, str)
            }
            get = values.get
            name = get("name")
            if name is None:
                errors.append(f"line {line}: the name is empty")
                continue
            try:
                pairs = normalise((get("numbers") or "").split(";"))
            except ValueError as exc:
                errors.append(f"line {line} ({name}): {exc}")
                continue
            key = get("id") or f"{name.lower()}|{(get('company') or '').lower()}"
            if key in keys:
                errors.append(f"line {line} ({name}): same contact as line {keys[key]}")
                continue
            keys[key] = line
            rows.append((name, pairs, get("company"), get("owner_extension"), get("email"), key))
    if errors:
        shown = errors[:20] + ([f"... and {len(errors) - 20} more"] if len(errors) > 20 else [])
        raise DirectoryImportError(f"{file}: {len(errors)} bad row(s):\n" + "\n".join(shown))
    return rows
