"""``LazyLedger``: a connector's activity ledger, found in the data directory, opened on
first use under a lock and closed at shutdown (HubSpot and Pipedrive share it)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from callbridge import ActivityLedger, LazyLedger


def test_nothing_is_created_before_first_use(tmp_path: Path) -> None:
    slot = LazyLedger("acme-activities.sqlite3", data_dir=tmp_path)
    assert slot.path == tmp_path / "acme-activities.sqlite3"
    assert slot.notes() == []
    assert not slot.path.exists()


def test_opened_once_on_first_use_then_closed_and_reopened(tmp_path: Path) -> None:
    slot = LazyLedger("acme.sqlite3", data_dir=tmp_path)
    ledgers: list[ActivityLedger] = []
    threads = [threading.Thread(target=lambda: ledgers.append(slot.open())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(ledger) for ledger in ledgers}) == 1
    ledgers[0].set_note("owners", "refused")
    slot.close()
    slot.close()  # twice is harmless
    reopened = slot.open()
    assert reopened is not ledgers[0]
    assert reopened.notes() == ["refused"] and slot.notes() == ["refused"]
    slot.close()


def test_the_data_directory_comes_from_the_environment_when_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLBRIDGE_DATA_DIR", str(tmp_path / "env"))
    slot = LazyLedger("acme.sqlite3")
    assert slot.path == tmp_path / "env" / "acme.sqlite3"
    slot.place(None, str(tmp_path / "core"))  # no DATA_DIR of its own: the core's
    assert slot.path == tmp_path / "core" / "acme.sqlite3"
    slot.place(tmp_path / "own", str(tmp_path / "core"))  # its own wins
    assert slot.path == tmp_path / "own" / "acme.sqlite3"
    slot.place(None, None)
    assert slot.path == tmp_path / "env" / "acme.sqlite3"
    monkeypatch.delenv("CALLBRIDGE_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert LazyLedger("acme.sqlite3").path == tmp_path / "xdg" / "callbridge" / "acme.sqlite3"
