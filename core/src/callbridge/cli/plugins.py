"""``callbridge plugins``: every plugin found, and why each one is or is not active.

The first thing to run when a connector "does nothing": it loads plugins exactly as the
service does (same sources, same settings validation) and shows name, version, source,
hooks and state with the reason. Settings values are never printed, so secrets cannot leak.
A plugin may also keep *notes* for the operator (``notes() -> list[str]``: an optional CRM
API that refuses it, say); they are shown after the reason.
"""

from __future__ import annotations

import json
import logging

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..plugins.manager import ACTIVE, DISABLED, FAILED, NOT_CONFIGURED, PluginInfo, load_plugins
from ..settings import load_settings

_STYLE = {ACTIVE: "green", NOT_CONFIGURED: "yellow", DISABLED: "dim", FAILED: "bold red"}


log = logging.getLogger(__name__)


def notes_of(info: PluginInfo) -> list[str]:
    """What an active plugin says the operator should know (its ``notes()``), never raising."""
    reader = getattr(info.plugin, "notes", None)
    if info.state != ACTIVE or not callable(reader):
        return []
    try:
        return [str(note) for note in reader() or []]
    except Exception as exc:  # a listing command must list, whatever one plugin does
        log.warning("plugin %s: notes() failed: %s", info.name, type(exc).__name__)
        return []


def _as_dict(info: PluginInfo) -> dict[str, object]:
    return {
        "name": info.name,
        "company": info.company,
        "version": info.version,
        "source": info.source,
        "state": info.state,
        "reason": info.reason,
        "hooks": info.hooks,
        "notes": notes_of(info),
    }


def _table(infos: list[PluginInfo], companies: bool) -> Table:
    """The table; a company column only with a companies file (``default`` says nothing)."""
    table = Table(title="callbridge plugins", title_justify="left")
    table.add_column("name", style="bold")
    if companies:
        table.add_column("company")
    table.add_column("version")
    table.add_column("source")
    table.add_column("hooks")
    table.add_column("state")
    table.add_column("reason", overflow="fold")
    for info in infos:
        reason = Text(info.reason or "")
        for note in notes_of(info):
            reason.append(("\n" if reason else "") + "note: " + note, style="yellow")
        company = [info.company] if companies else []
        table.add_row(
            info.name,
            *company,
            info.version or "-",
            info.source,
            ", ".join(info.hooks) or "-",
            Text(info.state, style=_STYLE.get(info.state, "")),
            reason,
        )
    return table


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--company", default=None, help="Only this company's plugin instances.")
def plugins(as_json: bool, company: str | None) -> None:
    """List every plugin: name, company, version, source, hooks and state (with the reason)."""
    settings = load_settings()
    loaded = load_plugins(settings)
    try:
        if company is not None and company not in loaded.companies:
            known = ", ".join(loaded.companies.names)
            raise click.BadParameter(
                f"no company {company!r}; known: {known}", param_hint="--company"
            )
        infos = [i for i in loaded.infos if company is None or i.company == company]
        if as_json:
            click.echo(json.dumps([_as_dict(info) for info in infos], indent=2))
            return
        console = Console(soft_wrap=False)
        console.print(_table(infos, companies=not loaded.companies.single))
        failed = sum(1 for info in infos if info.state == FAILED)
        if failed:
            console.print(f"[bold red]{failed} plugin(s) failed[/]: see the reason column.")
    finally:
        loaded.shutdown(None)
