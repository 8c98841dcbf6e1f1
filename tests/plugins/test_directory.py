"""The directory plugin: a real SQLite file, numbers in every format, exactly one activity."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from callbridge.models import CallRecord, Direction, Originate, Outcome
from callbridge.plugins.builtin.directory import (
    SAMPLE_CONTACTS,
    DirectoryImportError,
    DirectoryPlugin,
)
from callbridge.plugins.manager import load_plugins
from callbridge.settings import Settings


@pytest.fixture
def directory(tmp_path: Path) -> DirectoryPlugin:
    return DirectoryPlugin.open(tmp_path / "dir" / "directory.sqlite3", region="IT")


def rows(path: Path, table: str) -> int:
    with closing(sqlite3.connect(path)) as db:
        count: int = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        return count


@pytest.mark.parametrize(
    "number",
    ["+39 06 1234 5678", "0612345678", "06-1234-5678", "0039 06 12345678", "+390612345678"],
)
def test_lookup_by_any_format(directory: DirectoryPlugin, number: str) -> None:
    contact_id = directory.add_contact(
        "Mario Rossi", ["06 1234 5678", "347 123 4567"], company="Rossi Srl", owner_extension="201"
    )
    contact = directory.lookup_contact(number, None)  # type: ignore[arg-type]
    assert contact is not None
    assert (contact.record_id, contact.name, contact.company) == (
        str(contact_id),
        "Mario Rossi",
        "Rossi Srl",
    )
    assert contact.connector == "directory"
    assert contact.owner_id == "201"
    assert contact.numbers == ["+390612345678", "+393471234567"]
    assert not contact.ambiguous


def test_lookup_misses(directory: DirectoryPlugin) -> None:
    directory.add_contact("Mario Rossi", ["06 1234 5678"])
    assert directory.lookup_contact("06 1234 5679", None) is None  # type: ignore[arg-type]
    assert directory.lookup_contact("201", None) is None  # type: ignore[arg-type]
    assert directory.lookup_contact("", None) is None  # type: ignore[arg-type]


def test_foreign_numbers_and_region(tmp_path: Path) -> None:
    german = DirectoryPlugin.open(tmp_path / "de.sqlite3", region="DE")
    german.add_contact("Hans Müller", ["030 12345678"])
    assert german.lookup_contact("+49 30 12345678", None) is not None  # type: ignore[arg-type]
    assert german.lookup_contact("0049 30 1234 5678", None) is not None  # type: ignore[arg-type]


def test_two_contacts_sharing_a_number_are_ambiguous(directory: DirectoryPlugin) -> None:
    first = directory.add_contact("Giulia Bianchi", ["02 8765 4321"], company="Bianchi SpA")
    second = directory.add_contact("Luca Bianchi", ["+39 02 87654321"], company="Bianchi SpA")
    contact = directory.lookup_contact("0039 02 8765 4321", None)  # type: ignore[arg-type]
    assert contact is not None
    assert contact.ambiguous
    assert [c.record_id for c in contact.candidates] == [str(first), str(second)]
    assert contact.record_id == str(first)


def test_record_url_template(tmp_path: Path) -> None:
    plugin = DirectoryPlugin.open(tmp_path / "d.sqlite3", record_url="/directory/contacts/{id}")
    contact_id = plugin.add_contact("Anna", ["+39 02 1111 2222"])
    contact = plugin.lookup_contact("0211112222", None)  # type: ignore[arg-type]
    assert contact is not None
    assert contact.url == f"/directory/contacts/{contact_id}"


def test_bad_contacts_are_refused(directory: DirectoryPlugin) -> None:
    with pytest.raises(ValueError, match="needs a name"):
        directory.add_contact("  ", ["0612345678"])
    with pytest.raises(ValueError, match="'12ab' is not a phone number"):
        directory.add_contact("X", ["0612345678", "12ab"])
    with pytest.raises(ValueError, match="no phone number"):
        directory.add_contact("X", [])
    assert directory.list_contacts() == []


# --- log_call -------------------------------------------------------------------------------------


def test_log_call_writes_one_row_with_the_fields(
    directory: DirectoryPlugin, make_record: Callable[..., CallRecord]
) -> None:
    contact_id = directory.add_contact("Mario Rossi", ["06 1234 5678"], owner_extension="205")
    contact = directory.lookup_contact("0612345678", None)  # type: ignore[arg-type]
    assert contact is not None
    record = make_record(contacts={"directory": contact})
    ref = directory.log_call(record)
    assert (ref.connector, ref.record_type) == ("directory", "activity")
    [activity] = directory.list_activities(10)
    assert str(activity.id) == ref.record_id
    assert activity.idempotency_key == record.idempotency_key("directory")
    assert activity.call_key == "c1:0000AB12"
    assert activity.direction == "inbound"
    assert activity.remote_number == "+390612345678"
    assert activity.local_extension == "201"
    assert activity.ring_at == record.call.ring_at
    assert activity.answer_at == record.call.answer_at
    assert activity.end_at == record.call.end_at
    assert activity.duration_s == 125
    assert (activity.outcome, activity.hung_up_by) == ("answered", "remote")
    assert (activity.contact_id, activity.contact_name) == (contact_id, "Mario Rossi")
    assert activity.owner_extension == "205"


def test_log_call_is_idempotent_across_retries_and_reopen(
    tmp_path: Path, make_record: Callable[..., CallRecord]
) -> None:
    path = tmp_path / "directory.sqlite3"
    record = make_record()
    first = DirectoryPlugin.open(path)
    refs = {first.log_call(record).record_id for _ in range(5)}
    reopened = DirectoryPlugin.open(path)
    refs.add(reopened.log_call(record).record_id)
    assert len(refs) == 1
    assert rows(path, "activities") == 1
    other = make_record(key="c1:0000AB13", user_call_id="0000AB13")
    assert reopened.log_call(other).record_id not in refs
    assert rows(path, "activities") == 2


def test_log_call_is_idempotent_under_concurrent_retries(
    tmp_path: Path, make_record: Callable[..., CallRecord]
) -> None:
    path = tmp_path / "directory.sqlite3"
    record = make_record()
    plugins = [DirectoryPlugin.open(path) for _ in range(4)]
    refs: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def deliver(plugin: DirectoryPlugin) -> None:
        try:
            start.wait(timeout=30)
            refs.append(plugin.log_call(record).record_id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(plugins[i % 4],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(refs) == 8
    assert len(set(refs)) == 1
    assert rows(path, "activities") == 1


def test_click_to_call_context_wins(
    directory: DirectoryPlugin,
    make_record: Callable[..., CallRecord],
    make_originate: Callable[[str, str], Originate],
) -> None:
    clicked = directory.add_contact("Clicked", ["+39 333 000 1111"], owner_extension="209")
    directory.add_contact("Found by number", ["06 1234 5678"])
    found = directory.lookup_contact("0612345678", None)  # type: ignore[arg-type]
    assert found is not None
    record = make_record(
        contacts={"directory": found},
        direction=Direction.OUTBOUND,
        originate=make_originate("directory", str(clicked)),
    )
    directory.log_call(record)
    [activity] = directory.list_activities(1)
    assert (activity.contact_id, activity.owner_extension) == (clicked, "209")
    assert activity.direction == "outbound"


def test_another_crms_context_does_not_apply(
    directory: DirectoryPlugin,
    make_record: Callable[..., CallRecord],
    make_originate: Callable[[str, str], Originate],
) -> None:
    by_number = directory.add_contact("By number", ["06 1234 5678"])
    record = make_record(originate=make_originate("salesforce", "003000000000001"))
    directory.log_call(record)
    assert directory.list_activities(1)[0].contact_id == by_number


def test_ambiguous_or_unknown_caller_logs_without_contact(
    directory: DirectoryPlugin, make_record: Callable[..., CallRecord]
) -> None:
    directory.add_contact("A", ["06 1234 5678"])
    directory.add_contact("B", ["06 1234 5678"])
    directory.log_call(make_record())
    directory.log_call(
        make_record(
            key="c1:X2",
            user_call_id="X2",
            remote_number="unknown",
            remote_e164=None,
            outcome=Outcome.MISSED,
            answer_at=None,
        )
    )
    newest, oldest = directory.list_activities(10)
    assert oldest.contact_id is None
    assert (newest.contact_id, newest.remote_number, newest.outcome) == (None, "unknown", "missed")
    assert newest.answer_at is None


# --- CSV -----------------------------------------------------------------------------------------


GOOD_CSV = """name,company,numbers,owner_extension,email
Mario Rossi,Rossi Srl,+39 06 1234 5678;347 123 4567,201,mario@example.org
Hans Müller,Müller GmbH,0049 30 12345678,202,
Anna Verdi,,(+39) 011-555-0101,,anna@example.org
"""


def test_import_csv(tmp_path: Path, directory: DirectoryPlugin) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(GOOD_CSV, encoding="utf-8")
    assert directory.import_csv(path) == 3
    hans = directory.lookup_contact("+493012345678", None)  # type: ignore[arg-type]
    assert hans is not None
    assert (hans.name, hans.company, hans.owner_id) == ("Hans Müller", "Müller GmbH", "202")
    assert directory.lookup_contact("3471234567", None) is not None  # type: ignore[arg-type]
    ids = {c.name: c.id for c in directory.list_contacts()}
    # A re-import keeps ids, updates rows and drops contacts no longer in the file.
    path.write_text(
        "name,company,numbers,owner_extension,email\nMario Rossi,Rossi Srl,+39 06 1234 5678,209,\n",
        encoding="utf-8",
    )
    assert directory.import_csv(path) == 1
    [mario] = directory.list_contacts()
    assert (mario.id, mario.owner_extension, mario.numbers) == (
        ids["Mario Rossi"],
        "209",
        ["+390612345678"],
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,company\nMario,Rossi\n", "missing column(s) numbers"),
        ("", "missing column(s) name, numbers"),
        ("name,numbers\n,0612345678\n", "line 2: the name is empty"),
        ("name,numbers\nMario,0612345678\nLuca,12ab\n", "line 3 (Luca): '12ab' is not a phone"),
        ("name,numbers\nMario,\n", "line 2 (Mario): no phone number given"),
        ("name,numbers\nMario,0612345678\nMario,0612345679\n", "same contact as line 2"),
    ],
)
def test_csv_errors_are_clear_and_change_nothing(
    tmp_path: Path, directory: DirectoryPlugin, content: str, message: str
) -> None:
    directory.add_contact("Existing", ["0698765432"])
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DirectoryImportError) as caught:
        directory.import_csv(path)
    assert message in str(caught.value)
    assert str(path.resolve()) in str(caught.value)
    assert [c.name for c in directory.list_contacts()] == ["Existing"]


def test_all_bad_lines_are_listed(tmp_path: Path, directory: DirectoryPlugin) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("name,numbers\nA,xx\nB,0612345678\nC,yy\n", encoding="utf-8")
    with pytest.raises(DirectoryImportError, match="2 bad row") as caught:
        directory.import_csv(path)
    assert "line 2 (A)" in str(caught.value)
    assert "line 4 (C)" in str(caught.value)


# --- samples and configuration ---


def test_sample_contacts(directory: DirectoryPlugin) -> None:
    assert directory.seed_sample_contacts() == len(SAMPLE_CONTACTS) >= 12
    assert directory.seed_sample_contacts() == len(SAMPLE_CONTACTS)  # idempotent
    assert len(directory.list_contacts()) == len(SAMPLE_CONTACTS)
    mario = directory.lookup_contact("0612345678", None)  # type: ignore[arg-type]
    assert mario is not None
    assert mario.name == "Mario Rossi"
    switchboard = directory.lookup_contact("+39 02 8765 4321", None)  # type: ignore[arg-type]
    assert switchboard is not None
    assert switchboard.ambiguous
    for _, _, numbers, _, _ in SAMPLE_CONTACTS:
        for number in numbers:
            assert directory.lookup_contact(number, None) is not None  # type: ignore[arg-type]


def test_loaded_as_a_plugin_with_the_default_database(
    settings: Callable[..., Settings], tmp_path: Path
) -> None:
    plugins = load_plugins(settings(), entry_points=False)
    info = plugins.get("directory")
    assert info.state == "active"
    assert (tmp_path / "data" / "directory.sqlite3").is_file()
    assert plugins.implementers("lookup_contact") == ["directory"]


def test_csv_and_database_from_settings(
    settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_text(GOOD_CSV, encoding="utf-8")
    db_path = tmp_path / "elsewhere" / "contacts.sqlite3"
    monkeypatch.setenv("CALLBRIDGE_DIRECTORY_CSV", str(csv_path))
    monkeypatch.setenv("CALLBRIDGE_DIRECTORY_DATABASE", str(db_path))
    monkeypatch.setenv("CALLBRIDGE_DIRECTORY_RECORD_URL", "https://crm.example/c/{id}")
    plugins = load_plugins(settings(), entry_points=False)
    assert plugins.get("directory").state == "active"
    contact = plugins.lookup_contact("directory", "0612345678", None)
    assert contact.name == "Mario Rossi"
    assert contact.url.startswith("https://crm.example/c/")
    assert rows(db_path, "contacts") == 3


def test_bad_csv_in_settings_fails_the_plugin(
    settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_text("name,numbers\nMario,12ab\n", encoding="utf-8")
    monkeypatch.setenv("CALLBRIDGE_DIRECTORY_CSV", str(csv_path))
    plugins = load_plugins(settings(), entry_points=False)
    info = plugins.get("directory")
    assert info.state == "failed"
    assert "CALLBRIDGE_DIRECTORY_CSV" in (info.reason or "")
    assert "'12ab' is not a phone number" in (info.reason or "")
    assert plugins.get("console").state == "active"

    monkeypatch.setenv("CALLBRIDGE_DIRECTORY_CSV", str(tmp_path / "missing.csv"))
    monkeypatch.setenv("CALLBRIDGE_DIRECTORY_REGION", "XX")
    info = load_plugins(settings(), entry_points=False).get("directory")
    assert info.state == "failed"
    assert "CALLBRIDGE_DIRECTORY_CSV: Value error, no such file" in (info.reason or "")
    assert "CALLBRIDGE_DIRECTORY_REGION:" in (info.reason or "")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(sqlite3.DatabaseError, match="newer"):
        DirectoryPlugin.open(path)


def test_a_version_1_directory_is_upgraded_in_place_for_wrapups(tmp_path: Path) -> None:
    """A directory written before wrap-ups keeps its activities and gains their columns."""
    from callbridge.plugins.builtin.directory_data import _SCHEMA, SCHEMA_VERSION

    path = tmp_path / "old.sqlite3"
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(_SCHEMA)
        db.execute(
            "INSERT INTO activities (idempotency_key, call_key, direction, created_at)"
            " VALUES ('k', '1:A', 'inbound', '2024-05-01T12:00:00+00:00')"
        )
        db.execute("PRAGMA user_version=1")
    directory = DirectoryPlugin.open(path)
    (activity,) = directory.list_activities()
    assert (activity.call_key, activity.notes, activity.wrapup_revision) == ("1:A", None, 0)
    assert activity.recording_url is None
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    DirectoryPlugin.open(path)  # opening again runs no upgrade twice
