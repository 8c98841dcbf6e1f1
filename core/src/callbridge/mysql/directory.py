"""Cached look-ups of users, devices and companies in the PBX's own tables (and, uncached,
the external id of a call).

Events carry ids and numbers; connectors want names, extensions and e-mail addresses (to map
a PBX user to a CRM owner). The PBX already keeps those in ``users`` and ``monitor_devices``,
so the MySQL source fills what an event lacks from there. Every answer, including "not
found", is cached for ``ttl`` seconds: a burst of events for one user costs one query.

The directory runs its queries through a callable it is given (the source passes one bound
to its own connection), so it never opens connections of its own and a connection error
reaches the caller, whose reconnect logic handles it. A missing table (the document does not
describe ``companies``) is not an error: the answer is None.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pymysql

#: ``query(sql, args) -> rows``; raises PyMySQL errors.
QueryFn = Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]]

T = TypeVar("T")

_NO_SUCH_TABLE = 1146
_BAD_FIELD = 1054


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A row of ``users``, reduced to what events and connectors need."""

    id: int
    company_id: int | None
    username: str | None
    extension: str | None
    name: str | None
    surname: str | None
    email: str | None

    @property
    def display_name(self) -> str:
        """``Name Surname``, or whichever is present, or the username."""
        full = " ".join(p for p in (self.name, self.surname) if p)
        return full or (self.username or "")

    @property
    def identity(self) -> str:
        """The document's identity string for this user: ``Name|Surname|Department|0|0``."""
        return f"{self.name or ''}|{self.surname or ''}||0|0"


@dataclass(frozen=True, slots=True)
class DirectoryDevice:
    """A row of ``monitor_devices`` (a logged-in device)."""

    device_id: int
    user_id: int | None
    device_type: int | None
    host: str | None
    description: str | None


@dataclass(frozen=True, slots=True)
class DirectoryCompany:
    """A row of the site's ``companies`` table, when it has one."""

    id: int
    name: str | None


_CALL_EXTERNAL_ID = (
    "SELECT c.`externalid` FROM `monitor_user_calls` u JOIN `monitor_calls` c"
    " ON c.`callid` = u.`callid` AND c.`companyid` = u.`companyid`"
    " WHERE u.`usercallid` = %s AND c.`externalid` <> '' ORDER BY c.`ID` DESC LIMIT 1"
)
_CALL_EXTERNAL_ID_IN_COMPANY = _CALL_EXTERNAL_ID.replace(
    "WHERE u.`usercallid` = %s", "WHERE u.`usercallid` = %s AND u.`companyid` = %s"
)
_USER_COLUMNS = "`ID`, `companyid`, `username`, `extension`, `name`, `surname`, `email`"


class Directory:
    """Cached reads of ``users``, ``monitor_devices`` and ``companies``. Thread-safe."""

    def __init__(
        self,
        query: QueryFn,
        *,
        ttl: float = 300.0,
        companies_table: str = "companies",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._query = query
        self._ttl = ttl
        self._companies_table = companies_table
        self._clock = clock
        self._cache: dict[tuple[str, Any], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every cached answer."""
        with self._lock:
            self._cache.clear()

    def user(self, user_id: int) -> DirectoryUser | None:
        """The user with ``users.ID = user_id``."""
        return self._cached(("user", user_id), lambda: self._one_user("`ID` = %s", (user_id,)))

    def user_by_extension(
        self, extension: str, company_id: int | None = None
    ) -> DirectoryUser | None:
        """The user with this extension (in this company, when given)."""
        args: tuple[Any, ...]
        if company_id is None:
            where, args = "`extension` = %s", (extension,)
        else:
            where, args = "`extension` = %s AND `companyid` = %s", (extension, company_id)
        return self._cached(("ext", (extension, company_id)), lambda: self._one_user(where, args))

    def device(self, device_id: int) -> DirectoryDevice | None:
        """The logged-in device with ``monitor_devices.deviceid = device_id``."""

        def load() -> DirectoryDevice | None:
            rows = self._rows(
                "SELECT `deviceid`, `userid`, `devicety`, `host`, `descript` FROM `monitor_devices`"
                " WHERE `deviceid` = %s ORDER BY `ID` DESC LIMIT 1",
                (device_id,),
            )
            if not rows:
                return None
            r = rows[0]
            return DirectoryDevice(int(r[0]), _int(r[1]), _int(r[2]), _str(r[3]), _str(r[4]))

        return self._cached(("device", device_id), load)

    def company(self, company_id: int) -> DirectoryCompany | None:
        """The company's name, from a ``companies`` table (ID, name) if the site has one."""
        table = self._companies_table.replace("`", "")

        def load() -> DirectoryCompany | None:
            rows = self._rows(
                f"SELECT `ID`, `name` FROM `{table}` WHERE `ID` = %s LIMIT 1",  # noqa: S608
                (company_id,),
            )
            return DirectoryCompany(int(rows[0][0]), _str(rows[0][1])) if rows else None

        return self._cached(("company", company_id), load)

    def call_external_id(self, company_id: int | None, user_call_id: int) -> str | None:
        """``monitor_calls.externalid`` of the call a user call belongs to, or None.

        A PBX may write the CallReq's external id on the call (``monitor_calls``) and leave
        the user call's own ``externalid`` empty, so the trigger's event has no ``ext_id``.
        Not cached: the row is written once, when the call starts, and asked for once.
        """
        sql = _CALL_EXTERNAL_ID
        args: tuple[Any, ...] = (user_call_id,)
        if company_id is not None:
            sql, args = _CALL_EXTERNAL_ID_IN_COMPANY, (user_call_id, company_id)
        rows = self._rows(sql, args)
        return _str(rows[0][0]) if rows else None

    # -- internals ------------------------------------------------------------------------
    def _one_user(self, where: str, args: Sequence[Any]) -> DirectoryUser | None:
        rows = self._rows(
            f"SELECT {_USER_COLUMNS} FROM `users` WHERE {where} ORDER BY `ID` LIMIT 1",  # noqa: S608
            args,
        )
        if not rows:
            return None
        r = rows[0]
        return DirectoryUser(
            id=int(r[0]),
            company_id=_int(r[1]),
            username=_str(r[2]),
            extension=_str(r[3]),
            name=_str(r[4]),
            surname=_str(r[5]),
            email=_str(r[6]),
        )

    def _rows(self, sql: str, args: Sequence[Any]) -> Sequence[Sequence[Any]]:
        try:
            return self._query(sql, args)
        except (pymysql.err.ProgrammingError, pymysql.err.OperationalError) as exc:
            if exc.args and exc.args[0] in (_NO_SUCH_TABLE, _BAD_FIELD):
                return ()
            raise

    def _cached(self, key: tuple[str, Any], load: Callable[[], T]) -> T:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                cached: T = hit[1]
                return cached
        value = load()
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, value)
        return value


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
