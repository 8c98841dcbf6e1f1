"""What is installed in a PBX database, and whether our user may do what callbridge needs.

``callbridge mysql triggers --check`` (and ``callbridge mysql check``) prints this report. It
only reads: ``information_schema`` for tables, triggers and routines, the grants of the
current user, ``mysql.func`` for the ``sys_exec`` UDF when readable, and the outbox backlog.
Privileges come from the user's own grants (global, database and table level); privileges
reached only through roles are not seen and are reported as missing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .schema import TABLES
from .triggers import ANSWERED_TABLE, OUTBOX_TABLE, PROCEDURES, TRIGGERS

#: What each role needs. Installing: the DDL; reading: the outbox and the directory tables.
NEEDED_TO_INSTALL = ("CREATE", "TRIGGER", "CREATE ROUTINE", "ALTER ROUTINE")
NEEDED_TO_READ = ("SELECT", "DELETE")


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
            lines.append(f"outbox backlog: {self.outbox_rows} rows{oldest}")
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


def check_installation(conn: Any) -> CheckReport:
    """Inspect the connection's database. Reads only."""
    (version, database, user), *_ = _rows(conn, "SELECT VERSION(), DATABASE(), CURRENT_USER()")
    report = CheckReport(server=str(version), database=str(database), user=str(user))
    present = {
        r[0]
        for r in _rows(
            conn,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
        )
    }
    for table in [*TABLES, OUTBOX_TABLE, ANSWERED_TABLE]:
        report.tables[table] = table in present

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

    report.privileges = _privileges(conn, report.user)
    if not report.privileges["TRIGGER"] and not any(report.triggers.values()):
        # information_schema hides triggers and routines from a user without rights on them:
        # a reading-only account cannot tell whether they exist.
        report.triggers = dict.fromkeys(report.triggers)
        report.procedures = {k: (v or None) for k, v in report.procedures.items()}

    if ("sys_exec", "FUNCTION") in routines:
        report.sys_exec = "stored function (a stand-in, not the UDF)"
    else:
        try:
            udf = _rows(conn, "SELECT dl FROM mysql.func WHERE name = 'sys_exec'")
        except Exception:  # no access to mysql.func: say so rather than guess
            report.sys_exec = "unknown (cannot read mysql.func)"
        else:
            report.sys_exec = f"UDF ({udf[0][0]})" if udf else "absent"

    if report.tables[OUTBOX_TABLE]:
        (count, oldest), *_ = _rows(
            conn,
            f"SELECT COUNT(*), MIN(`created_at`) FROM `{OUTBOX_TABLE}`",  # noqa: S608
        )
        report.outbox_rows = int(count)
        report.outbox_oldest = None if oldest is None else str(oldest)
    return report


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
