"""``callbridge companies export|purge COMPANY``: one company's data out of the journal.

What a customer leaving, or a GDPR request, needs: ``export`` writes every record the
journal holds of one company (events, rejected requests, calls, originates, wrap-ups,
deliveries, agent messages) as JSON lines, secrets left out; ``purge`` deletes them and says
how many of each, leaving every other company's data as it was. The journal selects one
company through its own indexes (``journal/tenancy.py``), so neither reads anyone else's.

``purge`` without ``--yes`` deletes nothing, whether run from a terminal or a script: it
counts what it would delete and says how to go on. Remove the company from the companies
file (and reload) first, or its events keep arriving while it is purged.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TextIO

import click
from rich.console import Console
from rich.table import Table

from ..journal.base import Journal
from ..journal.factory import open_journal
from ..journal.tenancy import check_company_name
from ..settings import load_settings


def _company(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return check_company_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _unknown(store: Journal, company: str) -> str:
    known = ", ".join(store.companies()) or "none"
    return f"the journal holds no data of company {company!r} (companies with data: {known})"


@click.group()
def companies() -> None:
    """One company's data in the journal: export it, or purge it."""


@companies.command("export")
@click.argument("company", callback=_company)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to FILE (created readable by its owner only) instead of standard output.",
)
def export(company: str, output: Path | None) -> None:
    """Write every record of COMPANY as JSON lines (secrets never included)."""
    store = open_journal(load_settings())
    try:
        if not store.holds_company(company):
            raise click.ClickException(_unknown(store, company))
        if output is None:
            count = _write(store, company, sys.stdout)
        else:
            partial = output.with_name(f".{output.name}.partial")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as sink:
                count = _write(store, company, sink)
                sink.flush()
                os.fsync(sink.fileno())
            partial.replace(output)  # a file that is there is a whole export
    finally:
        store.close()
    where = "standard output" if output is None else str(output)
    click.echo(f"exported {count} record(s) of company {company} to {where}", err=True)


def _write(store: Journal, company: str, sink: TextIO) -> int:
    count = 0
    for line in store.export_company(company):
        sink.write(line + "\n")
        count += 1
    return count


@companies.command("purge")
@click.argument("company", callback=_company)
@click.option("--yes", is_flag=True, help="Really delete (without it, only count).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def purge(company: str, yes: bool, as_json: bool) -> None:
    """Delete every record of COMPANY from the journal; other companies are untouched."""
    store = open_journal(load_settings())
    try:
        if not store.holds_company(company):
            raise click.ClickException(_unknown(store, company))
        counts = store.purge_company(company, dry_run=not yes)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"company": company, "deleted": yes, "counts": counts}))
    else:
        verb = "deleted" if yes else "would delete"
        table = Table(title=f"company {company}: {verb}", title_justify="left")
        table.add_column("kind")
        table.add_column(verb, justify="right")
        for kind, count in counts.items():
            table.add_row(kind, str(count))
        Console(soft_wrap=False).print(table)
    if not yes:
        click.echo(
            f"nothing deleted: run `callbridge companies purge {company} --yes` to delete "
            "these records (export them first if they must be kept)",
            err=True,
        )
        sys.exit(1)
