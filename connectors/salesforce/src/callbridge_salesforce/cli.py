"""``callbridge salesforce ...``: admin commands of the connector.

Registered through the ``callbridge.commands`` entry point group, so they appear under the
core's ``callbridge`` command once the package is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from callbridge import read_settings

from .settings import ENV_PREFIX, SalesforceSettings

if TYPE_CHECKING:
    from .plugin import SalesforcePlugin


def _settings() -> SalesforceSettings:
    return read_settings(SalesforceSettings, ENV_PREFIX)


def _plugin() -> SalesforcePlugin:
    """A configured plugin; missing credentials become the CLI's readable exit 2."""
    from callbridge import ConfigurationError, NotConfigured

    from .plugin import SalesforcePlugin

    plugin = SalesforcePlugin()
    try:
        plugin.configure(_settings())
    except NotConfigured as exc:
        raise ConfigurationError(str(exc)) from None
    return plugin


@click.group()
def salesforce() -> None:
    """The Salesforce connector: Call Center file, connection check, test lookups."""


@salesforce.command("call-center")
@click.option("--public-url", help="Where Salesforce reaches callbridge (overrides the variable).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the file here instead of printing it.",
)
def call_center(public_url: str | None, output: Path | None) -> None:
    """Print the Call Center definition XML to import into Salesforce."""
    from .callcenter import call_center_xml

    xml = call_center_xml(_settings(), public_url)
    if output is None:
        click.echo(xml, nl=False)
    else:
        output.write_text(xml, encoding="utf-8")
        click.echo(f"written {output}", err=True)


@salesforce.command("check")
def check() -> None:
    """Log in and show which org and user callbridge reaches (no data is written)."""
    plugin = _plugin()
    instance = plugin.client.instance
    click.echo(f"connected: {instance} ({plugin.client!r})")
    click.echo(f"record links: {plugin.lightning_base()}")


@salesforce.command("lookup")
@click.argument("number")
def lookup_number(number: str) -> None:
    """Find NUMBER the way a ringing call would, and show the result."""
    from datetime import UTC, datetime

    from callbridge import Call, CallState, Direction

    plugin = _plugin()
    call = Call(
        key="cli:lookup",
        user_call_id="lookup",
        direction=Direction.INBOUND,
        state=CallState.RINGING,
        remote_number=number,
        ring_at=datetime.now(UTC),
    )
    contact = plugin.lookup_contact(number=number, call=call)
    if contact is None:
        click.echo("no match")
        return
    for item in contact.candidates or [contact]:
        click.echo(f"{item.record_type} {item.record_id} {item.name} {item.url}")
    if contact.ambiguous:
        click.echo("(ambiguous: the agent chooses)")
