"""What is installed in a PBX database, and whether our user may do what callbridge needs.

``callbridge mysql triggers --check`` (and ``callbridge mysql check``) prints this report. It
only reads: ``information_schema`` for tables, triggers and routines, the grants of the
current user, ``mysql.func`` for the ``sys_exec`` UDF when readable, and the outbox backlog.
Privileges come from the user's own grants (global, database and table level); privileges
reached only through roles are not seen and are reported as missing.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode

from .schema import TABLES
from .triggers import ANSWERED_TABLE, ERRORS_TABLE, OUTBOX_TABLE, PROCEDURES, TRIGGERS

#: What each role needs. Installing: the DDL; reading: the outbox and the directory tables.
NEEDED_TO_INSTALL = ("CREATE", "TRIGGER", "CREATE ROUTINE", "ALTER ROUTINE")
NEEDED_TO_READ = ("SELECT", "DELETE")
#: An outbox row older than this means nothing is reading the outbox.
BACKLOG_STALE_SECONDS = 60.0
#: The URL and token in an installed sys_exec ``callbridge_emit`` (what the triggers will call).
_INSTALLED_URL = re.compile(r'"(https?://[A-Za-z0-9._~:/-]+)\?outbox_id=')
_INSTALLED_TOKEN = re.compile(r"&token=([A-Za-z0-9_-]{16,256})")


@dataclass
class TriggerError:
    """One line of ``callbridge_errors``: errors a trigger swallowed so the PBX's write went on."""

    where: str
    errno: int
    count: int
    last_at: str
    message: str


def probe_nudge(url: str, token: str, *, timeout: float = 5.0) -> tuple[bool, str]:
    """Send callbridge the nudge the triggers send (``outbox_id=0``): (answered 202, what).

    The answer text never contains the token. Run from where the command runs, which is not
    necessarily the database server's network: a firewall between the two is not seen.
    """
    target = f"{url}?{urlencode({'outbox_id': '0', 'token': token})}"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as answer:  # noqa: S310 - http(s) only
            status, body = answer.status, answer.read(200)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(200)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url}: unreachable ({reason})"
    text = body.decode("utf-8", "replace").strip().replace(token, "***")
    return status == 202, f"{url}: {status} {text}"


@dataclass
class CheckReport:
    """The findings; ``ok`` says whether events can flow with what is installed."""

    server: str = ""
    database: str = ""
    user: str = ""
    tables: dict[str, bool] = field(default_factory=dict)
    #: None: cannot tell (this user may not list triggers/routines it has no rights on).
    triggers: dict[str, bool | None] = field(default_factory=dict)
    procedures: dict[str, bool | None] = field(default_factory=dict)
    mode: str | None = None
    other_triggers: list[str] = field(default_factory=list)
    vendor_sys_exec_triggers: list[str] = field(default_factory=list)
    privileges: dict[str, bool] = field(default_factory=dict)
    sys_exec: str = "unknown"
    outbox_rows: int | None = None
    outbox_oldest: str | None = None
    #: Seconds since the oldest unconsumed outbox row was written.
    outbox_age: float | None = None
    #: None: the errors table does not exist (triggers of an older version) or is unreadable.
    trigger_errors: list[TriggerError] | None = None
    #: The end-to-end test of the URL and token: None when not run.
    nudge_ok: bool | None = None
    nudge: str | None = None

    @property
    def problems(self) -> list[str]:
        """What stops events from flowing, in words."""
        found = []
        missing_tables = [
            t for t in ("monitor_user_calls", "monitor_devices", "users") if not self.tables.get(t)
        ]
        if missing_tables:
            found.append(f"missing document tables: {', '.join(missing_tables)}")
        if not self.tables.get(OUTBOX_TABLE):
            found.append(f"{OUTBOX_TABLE} is missing (run: callbridge mysql triggers --apply)")
        missing = [n for n, ok in {**self.triggers, **self.procedures}.items() if ok is False]
        if missing:
            found.append(f"missing triggers/procedures: {', '.join(missing)}")
        lacking = [p for p in NEEDED_TO_READ if not self.privileges.get(p)]
        if lacking:
            found.append(f"this user lacks {', '.join(lacking)} on {OUTBOX_TABLE}")
        if self.mode == "sys_exec" and self.sys_exec == "absent":
            found.append("the triggers are in sys_exec mode but sys_exec does not exist")
        if self.trigger_errors:
            total = sum(e.count for e in self.trigger_errors)
            found.append(
                f"the triggers swallowed {total} errors (events may be lost; the PBX's writes"
                f" went on): see {ERRORS_TABLE}, delete its rows once fixed"
            )
        if self.outbox_age is not None and self.outbox_age > BACKLOG_STALE_SECONDS:
            found.append(
                f"the oldest outbox row is {self.outbox_age:.0f} s old: is callbridge's"
                " MySQL source running (CALLBRIDGE_SOURCE)?"
            )
        if self.nudge_ok is False:
            found.append(f"the sys_exec nudge is not answered 202: {self.nudge}")
        if self.vendor_sys_exec_triggers:
            found.append(
                "triggers that call sys_exec outside callbridge (the vendor's?): "
                + ", ".join(self.vendor_sys_exec_triggers)
                + " - they may pass caller data to a shell; drop them"
            )
        return found

    @property
    def ok(self) -> bool:
        """True when nothing in ``problems`` stops events from flowing."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (with ``ok`` and ``problems``)."""
        return {**asdict(self), "ok": self.ok, "problems": self.problems}

    def render(self) -> str:
        """A human-readable report."""

        def mark(ok: bool | None) -> str:
            return "?? " if ok is None else ("ok " if ok else "-- ")

        lines = [f"server {self.server}, database {self.database}, user {self.user}", "tables:"]
        lines += [f"  {mark(ok)}{name}" for name, ok in self.tables.items()]
        lines.append(f"triggers (mode: {self.mode or 'not installed or not visible'}):")
        lines += [f"  {mark(ok)}{name}" for name, ok in self.triggers.items()]
        lines += [f"  {mark(ok)}procedure {name}" for name, ok in self.procedures.items()]
        if self.other_triggers:
            lines.append("other triggers on the monitor tables: " + ", ".join(self.other_triggers))
        lines.append("privileges of this user:")
        lines += [f"  {mark(ok)}{name}" for name, ok in self.privileges.items()]
        lines.append(f"sys_exec: {self.sys_exec}")
        if self.outbox_rows is not None:
            oldest = f", oldest {self.outbox_oldest}" if self.outbox_oldest else ""
            age = f" ({self.outbox_age:.1f} s ago)" if self.outbox_age is not None else ""
            lines.append(f"outbox backlog: {self.outbox_rows} rows{oldest}{age}")
        if self.trigger_errors is not None:
            lines.append(f"trigger errors ({ERRORS_TABLE}): {len(self.trigger_errors) or 'none'}")
            lines += [
                f"  {e.where} errno {e.errno}: {e.count}x, last {e.last_at}: {e.message}"
                for e in self.trigger_errors
            ]
        if self.nudge is not None:
            lines.append(f"nudge: {mark(self.nudge_ok)}{self.nudge}")
        problems = self.problems
        lines.append("result: " + ("OK" if not problems else "PROBLEMS"))
        lines += [f"  - {p}" for p in problems]
        return "\n".join(lines)


def _rows(conn: Any, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _grantee(user: str) -> str:
    name, _, host = user.rpartition("@")
    return f"'{name}'@'{host}'"


def installed_nudge(conn: Any) -> tuple[str, str] | None:
    """The URL and token the installed sys_exec triggers call, when this user may read them."""
    found = _rows(
        conn,
        "SELECT ROUTINE_DEFINITION FROM information_schema.ROUTINES"
        " WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = 'callbridge_emit'",
    )
    body = str(found[0][0] or "") if found else ""
    url, token = _INSTALLED_URL.search(body), _INSTALLED_TOKEN.search(body)
    return (url.group(1), token.group(1)) if url and token else None


def sys_exec_udf(conn: Any) -> bool | None:
    """Whether the ``sys_exec`` UDF is loaded; None when ``mysql.func`` cannot be read."""
    try:
        return bool(_rows(conn, "SELECT 1 FROM mysql.func WHERE name = 'sys_exec'"))
    except Exception:  # no access to mysql.func
        return None


def check_installation(
    conn: Any, *, url: str | None = None, token: str | None = None
) -> CheckReport:
    """Inspect the connection's database; reads only, except one nudge sent to callbridge.

    The nudge goes to ``url`` with ``token`` when given, else to what the installed sys_exec
    triggers call (outbox mode: only when ``url`` is given).
    """
    (version, database, user), *_ = _rows(conn, "SELECT VERSION(), DATABASE(), CURRENT_USER()")
    report = CheckReport(server=str(version), database=str(database), user=str(user))
    _check_tables(conn, report)
    _check_triggers(conn, report)
    routines = _check_routines(conn, report)
    report.privileges = _privileges(conn, report.user)
    if not report.privileges["TRIGGER"] and not any(report.triggers.values()):
        # information_schema hides triggers and routines from a user without rights on them:
        # a reading-only account cannot tell whether they exist.
        report.triggers = dict.fromkeys(report.triggers)
        report.procedures = {k: (v or None) for k, v in report.procedures.items()}
    _check_sys_exec(conn, report, routines)
    _check_outbox(conn, report)
    report.trigger_errors = _trigger_errors(conn)
    _check_nudge(conn, report, url, token)
    return report


def _check_tables(conn: Any, report: CheckReport) -> None:
    """Which of our tables exist."""
    present = {
        r[0]
        for r in _rows(
            conn,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
        )
    }
    for table in [*TABLES, OUTBOX_TABLE, ANSWERED_TABLE, ERRORS_TABLE]:
        report.tables[table] = table in present


def _check_triggers(conn: Any, report: CheckReport) -> None:
    """Our triggers, and anyone else's on the monitor tables (vendor sys_exec ones flagged)."""
    triggers = _rows(
        conn,
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_STATEMENT FROM information_schema.TRIGGERS"
        " WHERE TRIGGER_SCHEMA = DATABASE()",
    )
    names = {r[0] for r in triggers}
    for name in TRIGGERS:
        report.triggers[name] = name in names
    for name, table, body in triggers:
        if name in TRIGGERS:
            continue
        if table in ("monitor_user_calls", "monitor_devices", "monitor_calls", "monitor_users"):
            report.other_triggers.append(f"{name} ({table})")
        if "sys_exec" in str(body).lower():
            report.vendor_sys_exec_triggers.append(name)


def _check_routines(conn: Any, report: CheckReport) -> dict[tuple[str, str], str]:
    """Our procedures and the installed mode; returns every routine with its comment."""
    routines = {
        (r[0], r[1]): str(r[2] or "")
        for r in _rows(
            conn,
            "SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_COMMENT FROM information_schema.ROUTINES"
            " WHERE ROUTINE_SCHEMA = DATABASE()",
        )
    }
    for name in PROCEDURES:
        report.procedures[name] = (name, "PROCEDURE") in routines
    emit_comment = routines.get(("callbridge_emit", "PROCEDURE"), "")
    if "mode sys_exec" in emit_comment:
        report.mode = "sys_exec"
    elif "mode outbox" in emit_comment:
        report.mode = "outbox"
    return routines


def _check_sys_exec(conn: Any, report: CheckReport, routines: dict[tuple[str, str], str]) -> None:
    """What ``sys_exec`` is here: the UDF, a stand-in stored function, absent or unknown."""
    if ("sys_exec", "FUNCTION") in routines:
        report.sys_exec = "stored function (a stand-in, not the UDF)"
    else:
        udf = sys_exec_udf(conn)
        if udf is None:  # no access to mysql.func: say so rather than guess
            report.sys_exec = "unknown (cannot read mysql.func)"
        else:
            report.sys_exec = "UDF" if udf else "absent"


def _check_outbox(conn: Any, report: CheckReport) -> None:
    """The outbox's backlog: rows not consumed yet and the age of the oldest."""
    if not report.tables[OUTBOX_TABLE]:
        return
    backlog = (
        "SELECT COUNT(*), MIN(`created_at`),"  # noqa: S608 - a constant table name
        " TIMESTAMPDIFF(MICROSECOND, MIN(`created_at`), NOW(6)) / 1e6"
        f" FROM `{OUTBOX_TABLE}` WHERE `consumed_at` IS NULL"
    )
    (count, oldest, age), *_ = _rows(conn, backlog)
    report.outbox_rows = int(count)
    report.outbox_oldest = None if oldest is None else str(oldest)
    report.outbox_age = None if age is None else float(age)


def _check_nudge(conn: Any, report: CheckReport, url: str | None, token: str | None) -> None:
    """Send one nudge to ``url``/``token``, or to what the sys_exec triggers call."""
    target = (url, token) if url and token else None
    if target is None and report.mode == "sys_exec":
        target = installed_nudge(conn)
        if target is None:
            report.nudge_ok, report.nudge = None, "cannot read the installed URL and token"
    if target is not None:
        report.nudge_ok, report.nudge = probe_nudge(*target)


def _trigger_errors(conn: Any) -> list[TriggerError] | None:
    try:
        query = (
            "SELECT `where`, `errno`, `count`, `last_at`, `message`"  # noqa: S608 - constant
            f" FROM `{ERRORS_TABLE}` ORDER BY `last_at` DESC LIMIT 20"
        )
        rows = _rows(conn, query)
    except Exception:  # an older installation (no table) or no right to read it
        return None
    return [TriggerError(str(w), int(n), int(c), str(t), str(m)) for w, n, c, t, m in rows]


def _privileges(conn: Any, user: str) -> dict[str, bool]:
    grantee = _grantee(user)
    held: set[str] = {
        str(r[0])
        for r in _rows(
            conn,
            "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %s",
            (grantee,),
        )
    }
    held |= {
        str(r[0])
        for r in _rows(
            conn,
            "SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES"
            " WHERE GRANTEE = %s AND DATABASE() LIKE TABLE_SCHEMA",
            (grantee,),
        )
    }
    held |= {
        str(r[0])
        for r in _rows(
            conn,
            "SELECT PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES"
            " WHERE GRANTEE = %s AND TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (grantee, OUTBOX_TABLE),
        )
    }
    return {p: p in held for p in (*NEEDED_TO_READ, "UPDATE", *NEEDED_TO_INSTALL)}
