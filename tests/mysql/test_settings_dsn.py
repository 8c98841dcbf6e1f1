"""DSN parsing and the source's settings: clear errors, no password anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from callbridge.errors import ConfigurationError
from callbridge.journal.sqlite import SqliteJournal
from callbridge.mysql.dsn import parse_dsn
from callbridge.mysql.settings import source_from_settings
from callbridge.settings import load_settings


def test_parse_dsn_and_secrecy() -> None:
    dsn = parse_dsn("mysql://cb%40x:p%40ss-word@db.example:3307/voispeed?connect_timeout=2")
    assert (dsn.user, dsn.host, dsn.port, dsn.database) == ("cb@x", "db.example", 3307, "voispeed")
    assert dsn.password.get_secret_value() == "p@ss-word"
    assert dsn.connect_timeout == 2.0
    assert "p@ss" not in repr(dsn)
    assert "p%40ss" not in str(dsn)
    assert dsn.display() == "mysql://cb@x:***@db.example:3307/voispeed"
    assert parse_dsn(SecretStr("mysql://u@h/db")).port == 3306


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://u:secretpw@h/db", "must start with mysql://"),
        ("mysql://u:secretpw@h/", "must name the database"),
        ("mysql://u:secretpw@h/db;drop", "must name the database"),
        ("mysql://:secretpw@h/db", "must name the user"),
        ("mysql://u:secretpw@h/db?evil=1", "unknown options"),
        ("mysql://u:secretpw@h:notaport/db", "malformed"),
        ("mysql://u:secretpw@h/db?read_timeout=x", "timeouts"),
    ],
)
def test_parse_dsn_errors_never_show_the_password(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_dsn(url)
    assert message in str(info.value)
    assert "secretpw" not in str(info.value)


def test_source_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    try:
        assert source_from_settings(load_settings(source=None), journal) is None
        monkeypatch.setenv("CALLBRIDGE_MYSQL_GAP_GRACE", "5")
        monkeypatch.setenv("CALLBRIDGE_MYSQL_CONSUME", "mark")
        source = source_from_settings(load_settings(source="mysql://u:pw@h/pbx"), journal)
        assert source is not None
        assert (source.gap_grace, source.consume, source.cursor_name) == (5.0, "mark", "mysql:pbx")
        monkeypatch.setenv("CALLBRIDGE_MYSQL_CONSUME", "keep")
        with pytest.raises(ConfigurationError, match="CALLBRIDGE_MYSQL_CONSUME"):
            source_from_settings(load_settings(source="mysql://u:pw@h/pbx"), journal)
    finally:
        journal.close()
