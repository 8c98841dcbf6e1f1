"""``callbridge journal prune``: delete what the journal no longer needs, by hand.

The engine prunes once a day by itself (``CALLBRIDGE_RETENTION_DAYS``); this command does the
same at once, for another age, or only counts (``--dry-run``) so an operator can see what a
retention would remove before choosing it. It is safe while the service runs: it never
deletes an event the dispatcher has not handled, a pending delivery or an unsettled call.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.table import Table

from ..journal.factory import open_journal
from ..settings import load_settings


@click.group()
def journal() -> None:
    """The journal: callbridge's durable state (events, calls, deliveries)."""


@journal.command("prune")
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0),
    default=None,
    metavar="DAYS",
    help="Prune what is older than DAYS days (default: CALLBRIDGE_RETENTION_DAYS).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def prune(days: float | None, dry_run: bool, as_json: bool) -> None:
    """Delete handled events, old calls, deliveries and requests past the retention."""
    settings = load_settings()
    if days is None:
        days = settings.retention_days
        if days <= 0:
            click.echo(
                "nothing pruned: CALLBRIDGE_RETENTION_DAYS=0 keeps everything "
                "(give --older-than DAYS to prune anyway)"
            )
            return
    cutoff = datetime.now(UTC) - timedelta(days=days)
    store = open_journal(settings)
    try:
        counts = store.prune(cutoff, dry_run=dry_run)
    except NotImplementedError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    if as_json:
        click.echo(
            json.dumps({"older_than": cutoff.isoformat(), "dry_run": dry_run, "counts": counts})
        )
        return
    verb = "would delete" if dry_run else "deleted"
    table = Table(
        title=f"{verb} what is older than {days:g} day(s) ({cutoff:%Y-%m-%d %H:%M} UTC)",
        title_justify="left",
    )
    table.add_column("kind")
    table.add_column(verb, justify="right")
    for kind, count in counts.items():
        table.add_row(kind, str(count))
    Console(soft_wrap=False).print(table)
