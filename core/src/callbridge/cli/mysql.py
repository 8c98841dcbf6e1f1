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
@click.option("--apply", "apply_", is_flag=True, help="Install on --dsn instead of printing.")
@click.option("--uninstall", is_flag=True, help="Print (or apply) the statements removing them.")
@click.option("--check", "check_", is_flag=True, help="Report what is installed on --dsn.")
@click.option("--json", "as_json", is_flag=True, help="With --check: print JSON.")
@_DSN
def triggers(
    mode: str,
    url: str | None,
    token: str | None,
    apply_: bool,
    uninstall: bool,
    check_: bool,
    as_json: bool,
    dsn: str | None,
) -> None:
    """Print (or apply) the triggers that turn monitor table changes into outbox events."""
    from ..mysql import triggers as sql

    if check_:
        _check(dsn, as_json)
        return
    if uninstall:
        statements = sql.uninstall_statements()
    else:
        try:
            statements = sql.trigger_statements(
                mode, url=url, token=token if mode == "sys_exec" else None
            )
        except sql.UnsafeValue as exc:
            raise ConfigurationError(str(exc)) from None
    if apply_:
        _run(dsn, statements, "uninstall" if uninstall else f"triggers ({mode})")
    else:
        click.echo(sql.render_script(statements), nl=False)


@mysql.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_DSN
def check(as_json: bool, dsn: str | None) -> None:
    """Report tables, triggers, rights and sys_exec (same as ``triggers --check``)."""
    _check(dsn, as_json)


def _check(dsn: str | None, as_json: bool) -> None:
    from ..mysql.check import check_installation

    conn = _connect(dsn)
    try:
        report = check_installation(conn)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(report.render())
    sys.exit(0 if report.ok else 1)
