"""The ``directory`` plugin: a local contacts directory that behaves like a CRM.

It is the embedded default: with no CRM account at all, callers are recognised (contacts from
a CSV file or an SQLite file), pops show their name, and every finished call becomes one row of
the local ``activities`` table. It needs no variables and is always active unless
``CALLBRIDGE_CONNECTORS`` leaves it out or ``CALLBRIDGE_DIRECTORY_ENABLED=false``.

Numbers are stored and compared in E.164 (``callbridge.numbers.to_e164``), so
``06 1234 5678``, ``+39 06-12345678`` and ``0039061234 5678`` find the same contact. One SQLite
connection per operation keeps it safe to call from the dispatcher's worker threads; writes
run in ``BEGIN IMMEDIATE`` transactions and ``activities.idempotency_key`` is UNIQUE, so a
retried ``log_call`` returns the row it wrote the first time.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from ...errors import ConfigurationError
from ...hookspecs import hookimpl
from ...models import ActivityRef, Call, CallRecord, Contact, ContactDraft
from ...numbers import to_e164
from ...settings import Settings
from .directory_data import (
    DISPOSITIONS,
    SAMPLE_CONTACTS,
    SCHEMA_VERSION,
    DirectoryActivity,
    DirectoryContact,
    DirectoryImportError,
    _clean,
    _iso,
    _now,
    activity_from_row,
    read_csv,
    upgrade,
)
from .directory_db import DirectoryDatabase
from .directory_page import SECURITY_HEADERS, render_contact, render_not_found
from .directory_settings import DEFAULT_RECORD_URL, DirectorySettings

#: The data types are re-exported: part of the directory's API.
__all__ = ["DirectoryActivity", "DirectoryContact", "DirectoryImportError", "DirectoryPlugin"]


#: Most contacts ``search_contacts`` returns (a list an agent picks from, not a report).
SEARCH_LIMIT = 20

#: How many of a contact's activities its record page lists.
PAGE_ACTIVITIES = 20


class DirectoryPlugin(DirectoryDatabase):
    """The directory as a plugin (hooks) and as a small API (contacts, activities)."""

    name = "directory"
    #: The name its routes are mounted under: ``directory@acme`` when the core makes one
    #: instance per company (it sets this), ``directory`` otherwise.
    instance_name = "directory"
    settings_class = DirectorySettings
    embedded_default = True
    #: The outcomes the wrap-up form offers for this connector.
    wrapup_outcomes = list(DISPOSITIONS)

    def __init__(self) -> None:
        self._path: Path | None = None
        self.region = "IT"
        self.record_url: str | None = DEFAULT_RECORD_URL
        self.record_pages = True
        self._lock = threading.Lock()
        self._local = threading.local()

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        region: str = "IT",
        record_url: str | None = DEFAULT_RECORD_URL,
    ) -> DirectoryPlugin:
        """A directory on ``path`` without the plugin manager (demo, ``callbridge calls``)."""
        plugin = cls()
        plugin._setup(Path(path), region, record_url)
        return plugin

    def configure(self, settings: DirectorySettings | None, core: Settings) -> None:
        """Open (and create) the database; import the CSV file when one is set."""
        settings = settings or DirectorySettings()
        path = settings.database or core.data_dir / "directory.sqlite3"
        try:
            self.record_pages = settings.record_pages
            # Its routes are mounted under its instance's name (``directory@acme``).
            mine = DEFAULT_RECORD_URL.replace("/directory/", f"/{self.instance_name}/", 1)
            default_url = mine if settings.record_pages else None
            self._setup(
                path,
                settings.region or core.default_region,
                settings.record_url or default_url,
            )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"CALLBRIDGE_DIRECTORY_DATABASE: {path}: {exc}") from None
        if settings.csv is not None:
            try:
                self.import_csv(settings.csv)
            except (DirectoryImportError, OSError) as exc:
                raise ConfigurationError(f"CALLBRIDGE_DIRECTORY_CSV: {exc}") from None

    def _setup(self, path: Path, region: str, record_url: str | None) -> None:
        path = path.expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path, self.region, self.record_url = path, region, record_url
        with self._lock, self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"schema version {version} is newer than this callbridge ({SCHEMA_VERSION})"
                )
            upgrade(db, version)

    # --- contacts -----------------------------------------------------------------------------

    def _normalise(self, numbers: Iterable[str]) -> list[tuple[str, str]]:
        """``(raw, e164)`` pairs; ValueError naming the first number that is not one."""
        pairs: dict[str, str] = {}
        for raw in numbers:
            text = raw.strip()
            if not text:
                continue
            e164 = to_e164(text, self.region)
            if e164 is None:
                raise ValueError(f"{text!r} is not a phone number (region {self.region})")
            pairs.setdefault(e164, text)
        if not pairs:
            raise ValueError("no phone number given")
        return [(raw, e164) for e164, raw in pairs.items()]

    @staticmethod
    def _upsert(
        db: sqlite3.Connection,
        name: str,
        numbers: list[tuple[str, str]],
        company: str | None,
        owner_extension: str | None,
        email: str | None,
        source: str,
        source_key: str | None,
    ) -> int:
        row = db.execute(
            "INSERT INTO contacts (name, company, owner_extension, email, source, source_key,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (source, source_key) DO UPDATE SET name=excluded.name,"
            " company=excluded.company, owner_extension=excluded.owner_extension,"
            " email=excluded.email RETURNING id",
            (name, company, owner_extension, email, source, source_key, _now()),
        ).fetchone()
        contact_id = int(row[0])
        db.execute("DELETE FROM contact_numbers WHERE contact_id = ?", (contact_id,))
        db.executemany(
            "INSERT INTO contact_numbers (contact_id, raw, e164) VALUES (?, ?, ?)",
            [(contact_id, raw, e164) for raw, e164 in numbers],
        )
        return contact_id

    def add_contact(
        self,
        name: str,
        numbers: Iterable[str],
        *,
        company: str | None = None,
        owner_extension: str | None = None,
        email: str | None = None,
    ) -> int:
        """Add a contact and return its id. ValueError (nothing written) for bad data."""
        clean_name = _clean(name)
        if clean_name is None:
            raise ValueError("a contact needs a name")
        pairs = self._normalise(numbers)
        with self._write() as db:
            return self._upsert(
                db,
                clean_name,
                pairs,
                _clean(company),
                _clean(owner_extension),
                _clean(email),
                "api",
                None,
            )

    def import_csv(self, path: Path | str) -> int:
        """Import (or re-import) a CSV file; returns how many contacts it holds.

        Columns: ``name,company,numbers,owner_extension,email`` (``numbers`` separated by
        ``;``; an ``id`` column, when present, identifies rows across re-imports). The whole
        file is checked first: any error raises DirectoryImportError listing every bad line,
        and nothing is written. A re-import updates contacts in place (ids are kept, so logged
        activities still point at them) and removes those no longer in the file.
        """
        file = Path(path).expanduser().resolve()
        rows = read_csv(file, self._normalise)
        source = f"csv:{file}"
        with self._write() as db:
            ids = [
                self._upsert(db, name, pairs, company, owner, email, source, key)
                for name, pairs, company, owner, email, key in rows
            ]
            marks = ",".join("?" * len(ids))
            db.execute(
                f"DELETE FROM contacts WHERE source = ? AND id NOT IN ({marks})",  # noqa: S608
                (source, *ids),
            )
        return len(rows)

    def seed_sample_contacts(self) -> int:
        """Add the demo's sample contacts (idempotent); returns how many there are."""
        with self._write() as db:
            for name, company, numbers, owner, email in SAMPLE_CONTACTS:
                self._upsert(
                    db, name, self._normalise(numbers), company, owner, email, "sample", name
                )
        return len(SAMPLE_CONTACTS)

    def list_contacts(self) -> list[DirectoryContact]:
        """Every contact, by name."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM contacts ORDER BY name, id").fetchall()
            return [self._contact_row(db, row) for row in rows]

    def find(self, number: str) -> list[DirectoryContact]:
        """Contacts having ``number`` (any format), oldest first."""
        e164 = to_e164(number, self.region)
        if e164 is None:
            return []
        with self._connect() as db:
            rows = db.execute(
                "SELECT c.* FROM contacts c JOIN contact_numbers n ON n.contact_id = c.id"
                " WHERE n.e164 = ? ORDER BY c.id",
                (e164,),
            ).fetchall()
            return [self._contact_row(db, row) for row in rows]

    def search(self, query: str, limit: int = 20) -> list[DirectoryContact]:
        """Contacts whose name or company contains ``query`` (any case), or whose number
        contains its digits when it has three or more; by name."""
        text = query.strip()
        if not text:
            return []
        digits = "".join(c for c in text if c.isdigit())
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        number = f"%{digits}%" if len(digits) >= 3 else None
        with self._connect() as db:
            rows = db.execute(
                "SELECT DISTINCT c.* FROM contacts c"
                " LEFT JOIN contact_numbers n ON n.contact_id = c.id"
                " WHERE c.name LIKE ? ESCAPE '\\' OR c.company LIKE ? ESCAPE '\\'"
                " OR (? IS NOT NULL AND n.e164 LIKE ?) ORDER BY c.name, c.id LIMIT ?",
                (like, like, number, number, max(int(limit), 0)),
            ).fetchall()
            return [self._contact_row(db, row) for row in rows]

    def get_contact(self, contact_id: int) -> DirectoryContact | None:
        """One contact by id."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM contacts WHERE id = ?", (contact_id,)).fetchone()
            return self._contact_row(db, row) if row else None

    @staticmethod
    def _contact_row(db: sqlite3.Connection, row: sqlite3.Row) -> DirectoryContact:
        numbers = [
            r[0]
            for r in db.execute(
                "SELECT e164 FROM contact_numbers WHERE contact_id = ? ORDER BY rowid", (row["id"],)
            )
        ]
        return DirectoryContact(
            row["id"], row["name"], row["company"], row["owner_extension"], row["email"], numbers
        )

    def _as_contact(self, found: DirectoryContact) -> Contact:
        return Contact(
            connector=self.name,
            record_type="Contact",
            record_id=str(found.id),
            name=found.name,
            company=found.company,
            url=self.record_url.replace("{id}", str(found.id)) if self.record_url else None,
            owner_id=found.owner_extension,
            numbers=found.numbers,
        )

    # --- hooks --------------------------------------------------------------------------------

    @hookimpl
    def lookup_contact(self, number: str, call: Call) -> Contact | None:
        """The contact owning ``number``; several -> the first, with all as candidates."""
        found = self.find(number)
        if not found:
            return None
        contacts = [self._as_contact(item) for item in found]
        if len(contacts) == 1:
            return contacts[0]
        return contacts[0].model_copy(update={"candidates": contacts})

    @hookimpl
    def search_contacts(self, query: str) -> list[Contact]:
        """Contacts whose name or company holds ``query``, or with a number holding its
        digits (at least three), by name; at most ``SEARCH_LIMIT``."""
        return [self._as_contact(found) for found in self.search(query, SEARCH_LIMIT)]

    @hookimpl
    def create_contact(self, draft: ContactDraft) -> Contact:
        """Add the contact (a lead is a contact here); ValueError for a bad number."""
        owner = draft.extension
        contact_id = self.add_contact(
            draft.name, [draft.number], company=draft.company, owner_extension=owner,
            email=draft.email,
        )  # fmt: skip
        found = self.get_contact(contact_id)
        assert found is not None  # just written
        return self._as_contact(found)

    def _contact_id_for(self, record: CallRecord) -> int | None:
        """The agent's choice first, then the click-to-call context, then the contact found
        while ringing, then a lookup."""
        chosen = record.wrapup.record_for(self.name) if record.wrapup else None
        for context in (chosen, record.call.crm_context):
            if context is None or context.connector != self.name:
                continue
            try:
                contact_id = int(context.record_id)
            except ValueError:
                contact_id = -1
            if self.get_contact(contact_id) is not None:
                return contact_id
        contact = record.contact_for(self.name)
        if contact is None:
            number = record.call.remote_e164 or record.call.remote_number
            contact = self.lookup_contact(number, record.call) if number else None
        if contact is None or contact.ambiguous:
            return None
        try:
            return int(contact.record_id)
        except ValueError:
            return None

    def _placed(self, record: CallRecord) -> tuple[int | None, str | None]:
        """(contact id, its owner's extension) the activity of ``record`` belongs to."""
        contact_id = self._contact_id_for(record)
        found = self.get_contact(contact_id) if contact_id is not None else None
        return contact_id, found.owner_extension if found else None

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef:
        """Write one ``activities`` row per call; a retry returns the row already written."""
        call = record.call
        key = record.idempotency_key(self.name)
        contact_id, owner = self._placed(record)
        remote = (
            call.remote_e164
            or to_e164(call.remote_number, self.region)
            or _clean(call.remote_number)
        )
        with self._write() as db:
            db.execute(
                "INSERT INTO activities (idempotency_key, call_key, direction, remote_number,"
                " local_extension, ring_at, answer_at, end_at, duration_s, outcome, hung_up_by,"
                " contact_id, owner_extension, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                (
                    key,
                    call.key,
                    call.direction.value,
                    remote,
                    call.extension,
                    _iso(call.ring_at),
                    _iso(call.answer_at),
                    _iso(call.end_at),
                    max(record.duration_s, 0),
                    call.outcome.value if call.outcome else None,
                    call.hung_up_by.value if call.hung_up_by else None,
                    contact_id,
                    owner,
                    _now(),
                ),
            )
            row = db.execute(
                "SELECT id FROM activities WHERE idempotency_key = ?", (key,)
            ).fetchone()
        ref = ActivityRef(connector=self.name, record_type="activity", record_id=str(row[0]))
        if record.wrapup is not None or record.recording_url:
            self.update_call(record, ref, record.wrapup.revision if record.wrapup else 0)
        return ref

    @hookimpl
    def update_call(self, record: CallRecord, activity: ActivityRef, revision: int) -> ActivityRef:
        """Write the wrap-up on the activity row, moving it to the chosen contact.

        Only a newer revision changes the row (``wrapup_revision < ?``), so an update
        repeated after a crash writes nothing twice. The recording's link is set as given.
        """
        wrapup = record.wrapup
        if record.recording_url:
            with self._write() as db:
                db.execute(
                    "UPDATE activities SET recording_url = ? WHERE id = ?",
                    (record.recording_url, int(activity.record_id)),
                )
        if wrapup is None:
            return activity
        contact_id, owner = self._placed(record)
        related = wrapup.related_for(self.name)
        with self._write() as db:
            db.execute(
                "UPDATE activities SET notes = ?, disposition = ?, related = ?,"
                " contact_id = ?, owner_extension = ?, wrapup_revision = ?"
                " WHERE id = ? AND wrapup_revision < ?",
                (
                    _clean(wrapup.notes),
                    wrapup.outcome,
                    f"{related.record_type}:{related.record_id}" if related else None,
                    contact_id,
                    owner,
                    revision,
                    int(activity.record_id),
                    revision,
                ),
            )
        return activity

    @hookimpl
    def register_routes(self, router: APIRouter) -> None:
        """``GET /plugins/directory/contacts/{id}``: the record page pops link to.

        The directory plays the CRM, so "Open in directory" needs a page to open: the contact
        and its last activities, as plain HTML (404 for an id it does not hold).
        Served only with ``record_pages`` (``CALLBRIDGE_DIRECTORY_RECORD_PAGES``): the page
        has no authentication of its own.
        """
        if not self.record_pages:
            return

        @router.get(
            "/contacts/{contact_id}",
            response_class=HTMLResponse,
            summary="A directory contact's record page",
            responses={404: {"description": "No contact with this id"}},
        )
        def contact_page(contact_id: str) -> HTMLResponse:
            # Only what fits an SQLite INTEGER is looked up; anything else is simply unknown.
            plain = contact_id.isascii() and contact_id.isdecimal() and len(contact_id) <= 18
            found = self.get_contact(int(contact_id)) if plain else None
            if found is None:
                return HTMLResponse(
                    render_not_found(contact_id), status_code=404, headers=SECURITY_HEADERS
                )
            page = render_contact(found, self.contact_activities(found.id, PAGE_ACTIVITIES))
            return HTMLResponse(page, headers=SECURITY_HEADERS)

    # --- activities ---------------------------------------------------------------------------

    def list_activities(self, limit: int = 50) -> list[DirectoryActivity]:
        """The most recent activities, newest first."""
        return self._activities("", (), limit)

    def contact_activities(self, contact_id: int, limit: int = 50) -> list[DirectoryActivity]:
        """The most recent activities logged against one contact, newest first."""
        return self._activities(" WHERE a.contact_id = ?", (contact_id,), limit)

    def _activities(
        self, where: str, params: tuple[object, ...], limit: int
    ) -> list[DirectoryActivity]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT a.*, c.name AS contact_name FROM activities a"  # noqa: S608
                f" LEFT JOIN contacts c ON c.id = a.contact_id{where} ORDER BY a.id DESC LIMIT ?",
                (*params, max(int(limit), 0)),
            ).fetchall()
        return [activity_from_row(row) for row in rows]
