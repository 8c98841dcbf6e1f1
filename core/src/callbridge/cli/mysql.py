"""``callbridge mysql``: the PBX's tables, the triggers that feed callbridge, and a check.

From an empty MariaDB to events flowing (docs/mysql.md walks through it)::

    callbridge mysql schema --apply --dsn mysql://root@127.0.0.1/voispeed   # a lab only
    callbridge mysql triggers --mode outbox --apply --dsn mysql://admin:pw@host/voispeed
    callbridge mysql triggers --check --dsn mysql://callbridge:pw@host/voispeed
    CALLBRIDGE_SOURCE=mysql://callbridge:pw@host/voispeed callbridge serve

Without ``--apply`` the SQL is printed for review (with DELIMITER lines for the ``mysql``
client). ``--dsn`` defaults to ``CALLBRIDGE_SOURCE`` and ``--token`` to
``CALLBRIDGE_INGRESS_TOKEN``; passwords are never printed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..errors import ConfigurationError


def _connect(dsn: str | None) -> Any:
    from ..mysql.dsn import parse_dsn

    if not dsn:
        raise ConfigurationError("give --dsn mysql://user:pw@host:port/db or set CALLBRIDGE_SOURCE")
    parsed = parse_dsn(dsn)
    import pymysql

    try:
        return parsed.connect()
    except pymysql.err.MySQLError as exc:
        raise ConfigurationError(f"cannot connect to {parsed.display()}: {exc}") from None


def _run(dsn: str | None, statements: list[str], what: str) -> None:
    import pymysql

    from ..mysql.triggers import apply_statements

    conn = _connect(dsn)
    try:
        apply_statements(conn, statements)
    except pymysql.err.MySQLError as exc:
        raise ConfigurationError(f"{what} failed: {exc}") from None
    finally:
        conn.close()
    click.echo(f"{what}: {len(statements)} statements applied", err=True)


_DSN = click.option(
    "--dsn",
    envvar="CALLBRIDGE_SOURCE",
    show_envvar=True,
    help="mysql://user:pw@host:port/db (default: CALLBRIDGE_SOURCE).",
)


@click.group()
def mysql() -> None:
    """The PBX's MySQL side: document tables, triggers (outbox or sys_exec), checks."""


@mysql.command()
@click.option("--drop", is_flag=True, help="DROP the tables first (destroys their rows).")
@click.option("--apply", "apply_", is_flag=True, help="Run it on --dsn instead of printing.")
@_DSN
def schema(drop: bool, apply_: bool, dsn: str | None) -> None:
    """Print (or apply) the DDL of the document's tables: monitor_*, users, groups."""
    from ..mysql.schema import schema_sql, schema_statements

    if apply_:
        _run(dsn, schema_statements(drop=drop), "schema")
    else:
        click.echo(schema_sql(drop=drop), nl=False)


@mysql.command()
@click.option(
    "--mode",
    type=click.Choice(["outbox", "sys_exec"]),
    default="outbox",
    show_default=True,
    help="outbox: no UDF, callbridge polls. sys_exec: also curl callbridge with the row id.",
)
@click.option(
    "--url", help="sys_exec mode: callbridge's ingress URL, e.g. http://cb:8765/pbx/events."
)
@click.option(
    "--token",
    envvar="CALLBRIDGE_INGRESS_TOKEN",
    help="sys_exec mode: the ingress token (default: CALLBRIDGE_INGRESS_TOKEN).",
)
@click.option(
    "--curl",
    envvar="CALLBRIDGE_MYSQL_CURL",
    show_envvar=True,
    default="curl",
    show_default=True,
    help="sys_exec mode: curl as the database server finds it, e.g. C:\\curl\\bin\\curl.exe.",
)
@click.option(
    "--server-os",
    type=click.Choice(["auto", "posix", "windows"]),
    default="auto",
    show_default=True,
    help="sys_exec mode: the database server's OS (how curl is detached). auto: asked with "
    "--apply, posix when printing.",
)
@click.option("--apply", "apply_", is_flag=True, help="Install on --dsn instead of printing.")
@click.option("--uninstall", is_flag=True, help="Print (or apply) the statements removing them.")
@click.option(
    "--check",
    "check_",
    is_flag=True,
    help="Report what is installed on --dsn; with --url (or sys_exec triggers) also nudge it.",
)
@click.option("--json", "as_json", is_flag=True, help="With --check: print JSON.")
@_DSN
def triggers(
    mode: str,
    url: str | None,
    token: str | None,
    curl: str,
    server_os: str,
    apply_: bool,
    uninstall: bool,
    check_: bool,
    as_json: bool,
    dsn: str | None,
) -> None:
    """Print (or apply) the triggers that turn monitor table changes into outbox events."""
    from ..mysql import triggers as sql

    if check_:
        _check(dsn, as_json, url, token)
        return
    if uninstall:
        statements = sql.uninstall_statements()
    else:
        if mode == "sys_exec" and apply_:
            server_os = _sys_exec_server(dsn, server_os)
        try:
            statements = sql.trigger_statements(
                mode,
                url=url,
                token=token if mode == "sys_exec" else None,
                server_os="posix" if server_os == "auto" else server_os,
                curl=curl,
            )
        except sql.UnsafeValue as exc:
            raise ConfigurationError(str(exc)) from None
    if apply_:
        _run(dsn, statements, "uninstall" if uninstall else f"triggers ({mode})")
    else:
        click.echo(sql.render_script(statements), nl=False)


def _sys_exec_server(dsn: str | None, server_os: str) -> str:
    """Refuse sys_exec triggers where the UDF is missing; the server's OS when asked for."""
    from ..mysql.check import sys_exec_udf

    conn = _connect(dsn)
    try:
        udf = sys_exec_udf(conn)
        if server_os == "auto":
            with conn.cursor() as cur:
                cur.execute("SELECT @@version_compile_os")
                (compiled_for,) = cur.fetchone()
            server_os = "windows" if str(compiled_for).lower().startswith("win") else "posix"
    finally:
        conn.close()
    if udf is None:
        raise ConfigurationError(
            "cannot tell whether the sys_exec UDF exists (this user cannot read mysql.func);"
            " apply as a user who can"
        )
    if not udf:
        raise ConfigurationError(
            "the sys_exec UDF is not installed on this server: sys_exec triggers would only"
            " count errors. Install lib_mysqludf_sys first, or use --mode outbox"
        )
    return server_os


_URL = click.option("--url", help="Also send callbridge a nudge here (default: the installed one).")
_TOKEN = click.option(
    "--token", envvar="CALLBRIDGE_INGRESS_TOKEN", help="The ingress token for --url's nudge."
)


@mysql.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_URL
@_TOKEN
@_DSN
def check(as_json: bool, url: str | None, token: str | None, dsn: str | None) -> None:
    """Report tables, triggers, rights, sys_exec, trigger errors, backlog; nudge callbridge."""
    _check(dsn, as_json, url, token)


def _check(dsn: str | None, as_json: bool, url: str | None, token: str | None) -> None:
    from ..mysql.check import check_installation

    conn = _connect(dsn)
    try:
        report = check_installation(conn, url=url, token=token)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(report.render())
    sys.exit(0 if report.ok else 1)
