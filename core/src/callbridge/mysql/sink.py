"""A simulator sink that writes the monitor tables the way the PBX would.

The simulator's engine emits each event as the document's parameters. ``MysqlSink`` turns
them back into the PBX's table changes, so the triggers fire and the whole MySQL path (the
triggers, the outbox, ``MysqlSource``) runs as it would in production:

=========  ======================================================================
event      table change (one transaction)
=========  ======================================================================
1          INSERT monitor_devices (skipped when the device is already there)
2          DELETE the device's monitor_devices rows
16 / 17    INSERT monitor_user_calls: direction 1/2, status 1 (connecting)
18         UPDATE status = 2 (active)
19/20/21   UPDATE status = 6 (closed); then DELETE the row when ``delete_closed``
=========  ======================================================================

The user a call belongs to gets a ``users`` row (id, extension) if it has none, so the
trigger can look the extension up; ``load_users`` writes full rows (names, e-mail).
Values longer than their column are cut to it, as a PBX writing the same table would have to.

What the tables lose on the way (see docs/mysql.md): 20 (remote hang-up) and 21 (local) both
become "closed", which the triggers report as 21 for an answered call; a rejection and a
caller giving up both become 19.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from ..voispeed.codes import SsnEvent, ssn_event_of
from ..voispeed.events import DEFAULT_COMPANY_PARAMETER
from ..voispeed.ids import InvalidIdentifier, normalize_id
from .dsn import MysqlDsn, parse_dsn

log = logging.getLogger(__name__)

_CLOSING = {SsnEvent.CALL_REJECTED, SsnEvent.CALL_REMOTE_HANGUP, SsnEvent.CALL_LOCAL_HANGUP}


@dataclass(frozen=True, slots=True)
class SinkUser:
    """A user row to seed ``users`` with (what the simulator's directory knows)."""

    id: int
    extension: str
    company_id: int = 1
    username: str | None = None
    name: str | None = None
    surname: str | None = None
    email: str | None = None


class MysqlSink:
    """``EventSink`` writing monitor_* rows into MySQL/MariaDB. Thread-safe; never raises."""

    def __init__(
        self,
        dsn: str | SecretStr | MysqlDsn,
        *,
        delete_closed: bool = True,
        company_param: str = DEFAULT_COMPANY_PARAMETER,
        default_company: int = 1,
    ) -> None:
        self.dsn = dsn if isinstance(dsn, MysqlDsn) else parse_dsn(dsn)
        self.delete_closed = delete_closed
        self.company_param = company_param
        self.default_company = default_company
        #: Events that could not be written, with the reason (the sink never raises).
        self.failures: list[tuple[dict[str, str], str]] = []
        self._conn: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MysqlSink({self.dsn.display()!r})"

    def load_users(self, users: Iterable[SinkUser]) -> None:
        """Insert or update ``users`` rows (names, extension, e-mail) before calls start."""
        with self._lock:
            conn = self._connection()
            with conn.cursor() as cur:
                for user in users:
                    cur.execute(
                        "INSERT INTO `users` (`ID`, `companyid`, `username`, `extension`, `name`,"
                        " `surname`, `email`, `status`) VALUES (%s, %s, %s, %s, %s, %s, %s, 1)"
                        " ON DUPLICATE KEY UPDATE `companyid` = VALUES(`companyid`),"
                        " `username` = VALUES(`username`), `extension` = VALUES(`extension`),"
                        " `name` = VALUES(`name`), `surname` = VALUES(`surname`),"
                        " `email` = VALUES(`email`)",
                        (
                            user.id,
                            user.company_id,
                            (user.username or f"user{user.extension}")[:80],
                            user.extension[:6],
                            (user.name or "")[:40],
                            (user.surname or "")[:40],
                            (user.email or None) and user.email[:80],
                        ),
                    )

    def emit(self, params: dict[str, str]) -> None:
        """Write the table changes of one event; failures are logged and kept in ``failures``."""
        with self._lock:
            try:
                conn = self._connection()
                conn.begin()
                try:
                    self._apply(conn, params)
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
            except Exception as exc:  # a sink records failures instead of raising
                self.failures.append((dict(params), f"{type(exc).__name__}: {exc}"))
                log.warning("mysql sink could not write event %s: %s", params.get("ssn_event"), exc)
                self._drop_connection()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._drop_connection()

    # -- internals ------------------------------------------------------------------------
    def _apply(self, conn: Any, params: dict[str, str]) -> None:
        code = ssn_event_of(params.get("ssn_event"))
        company = _int(params.get(self.company_param), self.default_company)
        with conn.cursor() as cur:
            if code in (SsnEvent.DEVICE_LOGIN, SsnEvent.DEVICE_LOGOUT):
                self._apply_device(cur, code, params, company)
                return
            user_call = _hex(params.get("call_id"))
            user = _hex(params.get("sender_id") or params.get("user_id"))
            if code in (SsnEvent.CALL_INCOMING, SsnEvent.CALL_OUTGOING):
                direction = 1 if code is SsnEvent.CALL_INCOMING else 2
                self._ensure_user(cur, user, params.get("ext", ""), company)
                cur.execute(
                    "INSERT INTO `monitor_user_calls` (`companyid`, `instime`, `usercallid`,"
                    " `userid`, `direction`, `status`, `starttime`, `party_nr`, `party_desc`,"
                    " `group`, `externalid`, `ans_btn_en`, `gui_cmd_en`)"
                    " VALUES (%s, NOW(), %s, %s, %s, 1, NOW(), %s, %s, %s, %s, %s, 1)",
                    (
                        company,
                        user_call,
                        user,
                        direction,
                        params.get("number", "")[:20],
                        params.get("identity", "")[:255],
                        (params.get("group") or None) and params["group"][:20],
                        (params.get("ext_id") or None) and params["ext_id"][:40],
                        1 if direction == 1 else 0,
                    ),
                )
            elif code is SsnEvent.CALL_ANSWERED:
                cur.execute(
                    "UPDATE `monitor_user_calls` SET `status` = 2, `instime` = NOW()"
                    " WHERE `usercallid` = %s AND `status` <> 6",
                    (user_call,),
                )
            elif code in _CLOSING:
                cur.execute(
                    "UPDATE `monitor_user_calls` SET `status` = 6, `instime` = NOW()"
                    " WHERE `usercallid` = %s",
                    (user_call,),
                )
                if self.delete_closed:
                    cur.execute(
                        "DELETE FROM `monitor_user_calls` WHERE `usercallid` = %s", (user_call,)
                    )
            else:
                log.info(
                    "mysql sink: no table change for ssn_event %s", params.get("ssn_event", "")
                )

    def _apply_device(self, cur: Any, code: SsnEvent, params: dict[str, str], company: int) -> None:
        """A device registered (code 1: add its row once) or gone (code 2: delete it)."""
        device = _hex(params.get("device_id"))
        if code is SsnEvent.DEVICE_LOGOUT:
            cur.execute("DELETE FROM `monitor_devices` WHERE `deviceid` = %s", (device,))
            return
        user = _hex(params.get("user_id"))
        self._ensure_user(cur, user, params.get("number", ""), company)
        cur.execute("SELECT 1 FROM `monitor_devices` WHERE `deviceid` = %s", (device,))
        if cur.fetchone() is None:
            cur.execute(
                "INSERT INTO `monitor_devices` (`companyid`, `instime`, `deviceid`,"
                " `userid`, `devicety`, `host`, `descript`)"
                " VALUES (%s, NOW(), %s, %s, %s, %s, %s)",
                (
                    company,
                    device,
                    user,
                    _int(params.get("device_type"), 0),
                    params.get("device_host", "")[:80],
                    params.get("device_name", "")[:80],
                ),
            )

    @staticmethod
    def _ensure_user(cur: Any, user_id: int | None, extension: str, company: int) -> None:
        """Give the user a ``users`` row so the triggers can read its extension."""
        if user_id is None:
            return
        cur.execute("SELECT 1 FROM `users` WHERE `ID` = %s", (user_id,))
        if cur.fetchone() is None:
            cur.execute(
                "INSERT INTO `users` (`ID`, `companyid`, `username`, `extension`, `status`)"
                " VALUES (%s, %s, %s, %s, 1)",
                (user_id, company, f"user{extension}"[:80], extension[:6] or None),
            )

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self.dsn.connect()
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken
                log.debug("closing a broken connection failed", exc_info=True)


def _hex(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(normalize_id(value), 16)
    except InvalidIdentifier:
        return None


def _int(value: str | None, default: int) -> int:
    if value is None or not value.strip().isdigit():
        return default
    return int(value)
