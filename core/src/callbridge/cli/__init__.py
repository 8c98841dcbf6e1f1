"""The ``callbridge`` command.

Subcommands live in their own modules and are loaded lazily, so ``callbridge --help`` stays
fast and a broken optional part cannot take the whole command down. Every command turns a
``ConfigurationError`` into a readable message and exit status 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from ..errors import ConfigurationError

#: command name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "config": "callbridge.cli.config:config",
    "pbx": "callbridge.cli.pbx:pbx",
    "plugins": "callbridge.cli.plugins:plugins",
    "calls": "callbridge.cli.calls:calls",
    "deliveries": "callbridge.cli.deliveries:deliveries",
    "journal": "callbridge.cli.journal:journal",
    "companies": "callbridge.cli.companies:companies",
    "serve": "callbridge.cli.serve:serve",
    "engine": "callbridge.cli.engine:engine",
    "sim": "callbridge.cli.sim:sim",
    "demo": "callbridge.cli.demo:demo",
    "mysql": "callbridge.cli.mysql:mysql",
    "new-plugin": "callbridge.cli.new_plugin:new_plugin",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use; plugins may add more."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(name for name, target in COMMANDS.items() if _importable(target))
        names.update(_plugin_commands())
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        target = COMMANDS.get(cmd_name) or _plugin_commands().get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        result: click.Command = getattr(module, attr)
        return result

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            click.echo(f"callbridge: {exc}", err=True)
            sys.exit(2)


def _importable(target: str) -> bool:
    import importlib.util

    module_name = target.partition(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


def _plugin_commands() -> dict[str, str]:
    """Commands contributed by installed packages (entry point group ``callbridge.commands``).

    Connectors add their own admin commands this way (``callbridge salesforce call-center``).
    """
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group="callbridge.commands")}


def _print_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: the core and every installed connector, for a support request."""
    if not value or ctx.resilient_parsing:
        return
    from ..versions import version_report

    click.echo(version_report())
    ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_versions,
    help="Show the versions of callbridge and of every installed connector, and exit.",
)
def main() -> None:
    """callbridge links a VOIspeed PBX to CRMs: screen-pops, call activities, click-to-call."""
