"""``callbridge deliveries``: list plugin deliveries, and send dead ones again.

A delivery is one plugin's ``log_call`` for one call. It is dead when the plugin refused it
for good (``PermanentError``) or it failed ``max_attempts`` times / for ``max_age``. Fix the
cause (a CRM field, a permission, a token), then ``callbridge deliveries retry ID`` or
``--all-dead``, or only those of one plugin dead for one reason (``--plugin hubspot --reason
MISSING_SCOPES``: a text the last error contains, as ``list --dead`` shows it with the CRM's
answer): the running service picks them up at once (they are due now, attempts reset).
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..companies.registry import company_of_plugin
from ..journal.base import Delivery, DeliveryState, Journal
from ..journal.factory import open_journal
from ..settings import load_settings

_STYLE = {
    DeliveryState.DONE: "green",
    DeliveryState.PENDING: "yellow",
    DeliveryState.DEAD: "bold red",
}


def _as_dict(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "call_key": d.call_key,
        "company": company_of_plugin(d.plugin),
        "plugin": d.plugin,
        "action": d.action,
        "state": d.state.value,
        "attempts": d.attempts,
        "created_at": d.created_at.isoformat(),
        "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
        "last_error": d.last_error,
        "result": d.result,
    }


def _when(d: Delivery) -> str:
    if d.next_attempt_at is None:
        return "-"
    return d.next_attempt_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@click.group()
def deliveries() -> None:
    """Plugin deliveries (one log_call per call and plugin): list them, retry dead ones."""


@deliveries.command("list")
@click.option("--dead", is_flag=True, help="Only dead deliveries.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--company", default=None, help="Only this company's deliveries.")
def list_(dead: bool, limit: int, as_json: bool, company: str | None) -> None:
    """Deliveries, newest first."""
    settings = load_settings()
    journal = open_journal(settings)
    state = DeliveryState.DEAD if dead else None
    try:
        if company is None:
            rows = journal.list_deliveries(state=state, limit=limit)
        else:  # a delivery's company is its plugin instance's (``hubspot@acme``)
            found = journal.list_deliveries(state=state, limit=min(limit * 50, 100_000))
            rows = [d for d in found if company_of_plugin(d.plugin) == company][:limit]
    finally:
        journal.close()
    if as_json:
        click.echo(json.dumps([_as_dict(d) for d in rows], indent=2))
        return
    console = Console(soft_wrap=False)
    if not rows:
        console.print("no dead deliveries" if dead else "no deliveries yet")
        return
    console.print(_table(rows, dead, companies=settings.companies_file is not None))


def _table(rows: list[Delivery], dead: bool, companies: bool) -> Table:
    """The table; a company column only with a companies file (``default`` says nothing)."""
    table = Table(title="dead deliveries" if dead else "deliveries", title_justify="left")
    columns = ("id", "call", "company", "plugin", "state", "attempts", "next attempt")
    for name in (*columns, "last error"):
        if companies or name != "company":
            table.add_column(name, overflow="fold" if name == "last error" else "ellipsis")
    for d in rows:
        table.add_row(
            str(d.id),
            d.call_key,
            *([company_of_plugin(d.plugin)] if companies else []),
            d.plugin,
            Text(d.state.value, style=_STYLE[d.state]),
            str(d.attempts),
            _when(d),
            Text(d.last_error or ""),
        )
    return table


@deliveries.command("retry")
@click.argument("delivery_id", required=False, type=int)
@click.option("--all-dead", is_flag=True, help="Retry every dead delivery.")
@click.option("--plugin", default=None, help="Retry the dead deliveries of this plugin.")
@click.option(
    "--reason",
    default=None,
    help="Retry the dead deliveries whose last error contains this text (any case).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def retry(
    delivery_id: int | None,
    all_dead: bool,
    plugin: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    """Make dead deliveries pending again, due now.

    Give an ID, or --all-dead, or --plugin and/or --reason to pick the dead deliveries of
    one plugin, or dead for one cause, after fixing it.
    """
    chosen = sum([delivery_id is not None, all_dead, plugin is not None or reason is not None])
    if chosen != 1:
        raise click.UsageError("give a delivery ID, --all-dead, or --plugin/--reason (one)")
    if reason is not None and not reason.strip():
        raise click.UsageError("--reason must not be empty")
    journal = open_journal(load_settings())
    try:
        if delivery_id is not None:
            found = journal.get_delivery(delivery_id)
            if found is None:
                raise click.ClickException(f"no delivery {delivery_id}")
            if not journal.retry_delivery(delivery_id):
                raise click.ClickException(
                    f"delivery {delivery_id} is {found.state.value}, not dead: nothing to retry"
                )
            retried = [delivery_id]
        elif all_dead:
            retried = _retry_all_dead(journal)
        else:
            retried = _retry_matching(journal, plugin, reason)
    finally:
        journal.close()
    if as_json:
        click.echo(json.dumps({"retried": retried}))
    elif retried:
        click.echo(
            f"retrying {len(retried)} deliver{'y' if len(retried) == 1 else 'ies'}: "
            + ", ".join(map(str, retried))
        )
    else:
        click.echo("no dead deliveries")


def _retry_all_dead(journal: Journal) -> list[int]:
    """Retry every dead delivery, in pages; returns the ids made pending."""
    retried: list[int] = []
    while True:
        batch = journal.list_deliveries(state=DeliveryState.DEAD, limit=1000)
        revived = [d.id for d in batch if journal.retry_delivery(d.id)]
        retried.extend(revived)
        if len(batch) < 1000 or not revived:
            return retried


def _retry_matching(journal: Journal, plugin: str | None, reason: str | None) -> list[int]:
    """Retry the dead deliveries of ``plugin`` whose last error contains ``reason``."""
    needle = reason.strip().lower() if reason else None
    dead = journal.list_deliveries(state=DeliveryState.DEAD, limit=10_000_000)
    retried: list[int] = []
    for d in reversed(dead):  # oldest first: they are due first again
        if plugin is not None and d.plugin != plugin:
            continue
        if needle is not None and needle not in (d.last_error or "").lower():
            continue
        if journal.retry_delivery(d.id):
            retried.append(d.id)
    return retried
