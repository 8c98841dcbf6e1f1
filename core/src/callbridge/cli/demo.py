"""``callbridge demo``: callbridge and a simulated PBX, on embedded defaults (``make demo``).

Nothing to configure: a temporary data directory, the ``directory`` plugin with sample
contacts, callbridge's HTTP service on a free port, the simulator pointed at it, generated
tokens. No ``CALLBRIDGE_*`` variable is read, so a real configuration in the environment can
neither break the demo nor be reached by it. See docs/demo.md.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from ..journal.factory import SQLITE_FILE_NAME

if TYPE_CHECKING:
    from rich.console import Console

    from ..demo.feed import ScenarioChecked
    from ..demo.runner import Demo, Summary
    from ..sim.scenarios import Scenario


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the demo the way Ctrl-C does."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def _quiet_logging(console: Console) -> Iterator[None]:
    """Warnings only, printed through rich so they scroll above the live table; restored after
    (the command may run inside another program, e.g. a test runner)."""
    from rich.logging import RichHandler

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    noisy = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    saved_levels = [logger.level for logger in noisy]
    root.handlers[:] = [RichHandler(console=console, show_path=False, rich_tracebacks=False)]
    root.setLevel(logging.WARNING)
    for logger in noisy:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for logger, old in zip(noisy, saved_levels, strict=True):
            logger.setLevel(old)


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM ends the demo the way Ctrl-C does (main thread only), restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command()
@click.option("--once", is_flag=True, help="Play every scenario once, check, and exit (CI).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the journal and the directory here (default: a temporary directory).",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="callbridge's port (0: free)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0.1, max=50),
    default=None,
    help="Scenario speed-up (default: 1, or 4 with --once).",
)
@click.option(
    "--scenario",
    "names",
    multiple=True,
    metavar="NAME",
    help="Play only this built-in scenario (repeatable; default: all).",
)
@click.option("--plain", is_flag=True, help="One line per event instead of the live table.")
@click.option(
    "--dialect",
    type=click.Choice(["soap", "seri"]),
    default="soap",
    show_default=True,
    envvar="CALLBRIDGE_DEMO_DIALECT",
    help="The PBX's dialect: the document's SOAP and ssn_event callbacks, or the "
    "integration module's seri_endpoint.php and event_name callbacks.",
)
@click.option(
    "--companies",
    type=click.IntRange(1, 2),
    default=None,
    help="Companies on the simulated PBX, each with its own directory (default: 2 where "
    "callbridge serves several companies, else 1).",
)
@click.option(
    "--open",
    "open_panel",
    is_flag=True,
    help="Open the agent panel in the default web browser once callbridge is up.",
)
def demo(
    once: bool,
    data_dir: Path | None,
    port: int,
    host: str,
    speed: float | None,
    names: tuple[str, ...],
    plain: bool,
    dialect: str,
    companies: int | None,
    open_panel: bool,
) -> None:
    """Run callbridge against its simulated PBX and watch calls flow (Ctrl-C stops)."""
    from rich.console import Console

    from ..demo.companies import companies_available, demo_scenarios
    from ..demo.runner import Demo, DemoOptions
    from ..demo.view import describe, render_summary
    from ..journal.sqlite import state_path_for
    from ..sim.scenarios import ScenarioError, find_scenario

    journal_file = None if data_dir is None else data_dir / SQLITE_FILE_NAME
    if journal_file is not None and (
        journal_file.exists() or state_path_for(journal_file).exists()
    ):
        raise click.BadParameter(
            f"{data_dir} already holds a journal; the simulator starts its call ids afresh, "
            "so give a new or empty directory",
            param_hint="--data-dir",
        )
    if companies is None:
        companies = 2 if companies_available() else 1
    elif companies > 1 and not companies_available():
        raise click.BadParameter("this callbridge serves one company", param_hint="--companies")
    try:
        scenarios = [find_scenario(n) for n in names] if names else demo_scenarios(companies)
    except ScenarioError as exc:
        raise click.BadParameter(str(exc), param_hint="--scenario") from None
    console = Console(highlight=False)
    options = DemoOptions(
        data_dir=data_dir,
        host=host,
        port=port,
        speed=speed or (4.0 if once else 1.0),
        dialect="seri" if dialect == "seri" else "soap",
        companies=companies,
    )
    with _quiet_logging(console), _sigterm_stops():
        checks, summary = _run(Demo(options), console, once, scenarios, plain, open_panel)
    if summary is not None:
        console.print(render_summary(summary))
    if once:
        failed = [c for c in checks if not c.ok]
        if failed or len(checks) != len(scenarios):
            for check in failed:
                console.print(describe(check), style="red")
            if len(checks) != len(scenarios):
                console.print(f"only {len(checks)} of {len(scenarios)} scenarios were checked")
            sys.exit(1)
        console.print(f"All {len(checks)} scenarios wrote exactly the expected activities.")


def _run(
    demo_run: Demo,
    console: Console,
    once: bool,
    scenarios: list[Scenario],
    plain: bool,
    open_panel: bool = False,
) -> tuple[list[ScenarioChecked], Summary | None]:
    """Start, play (once or until Ctrl-C), stop; the checks and the summary."""
    from ..demo.view import LineView, LiveView

    checks: list[ScenarioChecked] = []
    try:
        demo_run.start()
        console.print(
            f"[bold]callbridge[/] on {demo_run.url}  ·  simulator SOAP on {demo_run.sim.url}"
        )
        panel_url = demo_run.panel_url("201")
        _print_url(console, "Agent panel: ", panel_url)
        if demo_run.companies:
            _print_url(console, "Globex's agent panel: ", demo_run.panel_url("301"))
        console.print(f"Data directory: {demo_run.data_dir}", style="dim")
        if open_panel:
            _open_in_browser(console, panel_url)
        live = not plain and console.is_terminal
        view = LiveView(console, panel_url) if live else LineView(console)
        demo_run.subscribe(view)
        with view:
            if once:
                checks = demo_run.run_once(scenarios)
            else:
                demo_run.run_forever(scenarios=scenarios)
    except KeyboardInterrupt:
        console.print("Stopping…", style="dim")
    finally:
        summary = demo_run.summary() if demo_run.running_or_none() else None
        demo_run.stop()
    return checks, summary


def _print_url(console: Console, label: str, url: str) -> None:
    """One line, never wrapped by rich: a URL cut across two lines cannot be copied (at 80
    columns the cut fell inside the token). The terminal may still fold a long line on
    screen, but copying it gives the whole URL; terminals that know links can click it."""
    from rich.style import Style
    from rich.text import Text

    text = Text(label)
    text.append(url, style=Style(underline=True, color="cyan", link=url))
    console.print(text, soft_wrap=True)


def _open_in_browser(console: Console, url: str) -> None:
    """``--open``: the standard ``webbrowser`` module (honours ``$BROWSER``)."""
    import webbrowser

    try:
        opened = webbrowser.open(url)
    except webbrowser.Error:
        opened = False
    if not opened:
        console.print("No web browser could be started: copy the agent panel URL above.")
