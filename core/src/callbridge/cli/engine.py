"""``callbridge engine``: the engine alone (journal -> tracker -> plugins), no HTTP.

``callbridge serve`` starts it as a child process by itself; run it by hand only beside
``callbridge serve`` with ``CALLBRIDGE_SERVER__ENGINE=none``, sharing the data directory, or
as one of several workers on one Redis journal (``--journal redis://...``): they share the
work by partitions (see docs/scaling.md, "Engine workers").
"""

from __future__ import annotations

import os

import click

from ..settings import load_settings


@click.command()
@click.option("--wake-fd", type=int, default=None, hidden=True)
@click.option("--bell-fd", type=int, default=None, hidden=True)
@click.option("--control-fd", type=int, default=None, hidden=True)
@click.option(
    "--journal",
    "journal_url",
    default=None,
    metavar="URL",
    help="The journal (as CALLBRIDGE_JOURNAL); workers on one redis:// URL share the work.",
)
def engine(
    wake_fd: int | None, bell_fd: int | None, control_fd: int | None, journal_url: str | None
) -> None:
    """Run the engine: dispatch journaled events to the plugins until stopped."""
    from ..assembly import assemble
    from ..engine.worker import run_worker
    from ..logs import configure_logging

    settings = load_settings() if journal_url is None else load_settings(journal=journal_url)
    configure_logging(settings)
    spawned = wake_fd is not None  # by ``callbridge serve``, beside its HTTP process
    if spawned and settings.server.engine_nice:
        # The PBX's acknowledgements get the processor first (see ServerSettings.engine_nice).
        os.nice(settings.server.engine_nice)
    parts = assemble(settings, engine_mode="thread", beside_ingress=spawned, serves_http=False)
    run_worker(
        parts.local_engine,
        start_sources=parts.start_sources,
        nudges=[source.nudge for source in parts.sources],
        close=parts.close,
        wake_fd=wake_fd,
        bell_fd=bell_fd,
        control_fd=control_fd,
    )
