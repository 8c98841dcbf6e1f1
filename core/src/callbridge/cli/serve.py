"""``callbridge serve``: the HTTP service with the engine behind it."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

import click

from ..errors import ConfigurationError
from ..settings import load_settings


@click.command()
@click.option("--host", default=None, help="Address to bind (CALLBRIDGE_SERVER__HOST).")
@click.option("--port", type=int, default=None, help="Port (CALLBRIDGE_SERVER__PORT).")
@click.option("--source", default=None, help="Extra event source, e.g. mysql://user:pw@host/db.")
def serve(host: str | None, port: int | None, source: str | None) -> None:
    """Serve the PBX ingress, the API, the agent stream and the panel."""
    import uvicorn

    from ..assembly import assemble
    from ..companies.reload import reload_on_sighup
    from ..logs import configure_logging
    from ..memory import freeze_startup_objects
    from ..server.app import create_app
    from ..server.http_protocol import LenientHttpProtocol

    overrides: dict[str, object] = {}
    if source:
        overrides["source"] = source
    settings = load_settings(**overrides)
    server = settings.server.model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    settings = settings.model_copy(update={"server": server})
    configure_logging(settings)
    child_env = dict(os.environ)
    if source:
        child_env["CALLBRIDGE_SOURCE"] = source
    running = assemble(settings, engine_mode=settings.server.engine, child_env=child_env)
    try:
        app = create_app(running.services, manage_engine=True)
    except ConfigurationError:
        running.close()
        raise
    running.start_sources()
    freeze_startup_objects()
    click.echo(
        f"callbridge {app.version} on http://{server.host}:{server.port} "
        f"(ingress /pbx/events, panel /agent, API docs /docs)",
        err=True,
    )
    _stop_cleanly_on_sigterm()
    # SIGHUP: read CALLBRIDGE_COMPANIES_FILE again (docs/companies.md#reloading).
    reload_on_sighup(running.services.reload, "serve")
    try:
        uvicorn.run(
            app,
            host=server.host,
            port=server.port,
            log_config=None,
            access_log=False,
            loop="auto",
            http=LenientHttpProtocol,  # raw non-ASCII bytes in a PBX's URL: see http_protocol
            timeout_graceful_shutdown=5,
        )
    finally:
        running.close()


def _stop_cleanly_on_sigterm() -> None:
    """Make SIGTERM (``docker stop``, systemd, ``kill``) stop as cleanly as Ctrl-C does.

    uvicorn handles SIGINT and SIGTERM itself: it stops taking requests and drains them, then
    raises the same signal again once its own handlers are gone. Under the default SIGTERM
    disposition that second delivery killed the process before ``running.close()`` stopped
    the engine child and closed the journal, and in a container the child died with it. With
    this (empty) handler in place the second delivery does nothing, ``uvicorn.run`` returns,
    and the ``finally`` below waits for the engine.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _already_stopping)


def _already_stopping(signum: int, frame: FrameType | None) -> None:
    """uvicorn has shut the server down already; ``serve`` closes the rest on return."""
