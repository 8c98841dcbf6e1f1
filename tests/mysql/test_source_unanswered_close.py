"""A user call that closes without being answered reaches the journal as an *inferred* 19.

The tables cannot say whether the user rejected it or the caller gave up, so the source marks
the 19 (``UNANSWERED_CLOSE``) and the tracker logs a missed call (``docs/mysql.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mysql_helpers import add_user, install

from callbridge.journal.sqlite import SqliteJournal
from callbridge.mysql.source import MysqlSource
from callbridge.voispeed.events import UNANSWERED_CLOSE, CallLocalHangup, CallRejected

pytestmark = pytest.mark.mysql


@pytest.fixture
def conn(mariadb: Any, database: str) -> Iterator[Any]:
    connection = mariadb.connect(database)
    install(connection)
    yield connection
    connection.close()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    j = SqliteJournal(tmp_path / "journal.db")
    yield j
    j.close()


def _call(conn: Any, usercallid: int, userid: int, statuses: list[int]) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO monitor_user_calls (companyid, usercallid, userid, direction, status,"
            " party_nr) VALUES (1, %s, %s, 1, 1, '0612345678')",
            (usercallid, userid),
        )
        for status in statuses:
            cur.execute(
                "UPDATE monitor_user_calls SET status = %s WHERE usercallid = %s",
                (status, usercallid),
            )


def test_unanswered_close_is_an_inferred_19_and_answered_close_a_plain_21(
    mariadb: Any, database: str, conn: Any, journal: SqliteJournal
) -> None:
    uid = add_user(conn, "201")
    _call(conn, 0x10, uid, [6])  # rang, closed: rejected or given up, the tables cannot say
    _call(conn, 0x11, uid, [2, 6])  # answered, closed
    source = MysqlSource(mariadb.url(database), journal, poll_interval=0.05)
    try:
        assert source.poll_once() == 5
    finally:
        source.close()
    events = [stored.event for stored in journal.events_after(0)]
    rejected = [e for e in events if isinstance(e, CallRejected)]
    assert len(rejected) == 1
    assert rejected[0].call_id == "00000010"
    assert rejected[0].params[UNANSWERED_CLOSE] == "1"
    assert not rejected[0].rejection_known
    closed = [e for e in events if isinstance(e, CallLocalHangup)]
    assert [e.call_id for e in closed] == ["00000011"]
    assert UNANSWERED_CLOSE not in closed[0].params
