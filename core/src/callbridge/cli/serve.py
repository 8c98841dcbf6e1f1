"""``callbridge serve``: the HTTP service with the engine behind it, or one of the two.

``--role`` (``CALLBRIDGE_SERVER__ROLE``) picks what this process runs: ``all`` (both),
``http`` (no engine: workers run elsewhere on the same Redis journal) or ``engine`` (a worker
with ``/healthz``, ``/readyz`` and ``/metrics`` for its orchestrator). See docs/scaling.md.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

import click

from ..errors import ConfigurationError
from ..settings import Settings, load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..assembly import EngineMode
    from ..server.services import Services


@click.command()
@click.option("--host", default=None, help="Address to bind (CALLBRIDGE_SERVER__HOST).")
@click.option("--port", type=int, default=None, help="Port (CALLBRIDGE_SERVER__PORT).")
@click.option("--source", default=None, help="Extra event source, e.g. mysql://user:pw@host/db.")
@click.option(
    "--role",
    type=click.Choice(["all", "http", "engine"]),
    default=None,
    help="all (default), http (no engine) or engine (no ingress/API) (CALLBRIDGE_SERVER__ROLE).",
)
def serve(host: str | None, port: int | None, source: str | None, role: str | None) -> None:
    """Serve the PBX ingress, the API, the agent stream and the panel (and/or the engine)."""
    import uvicorn

    from ..assembly import assemble
    from ..companies.reload import reload_on_sighup
    from ..logs import configure_logging
    from ..memory import freeze_startup_objects
    from ..server.http_protocol import LenientHttpProtocol

    overrides: dict[str, object] = {}
    if source:
        overrides["source"] = source
    settings = load_settings(**overrides)
    server = settings.server.model_copy(
        update={
            k: v for k, v in {"host": host, "port": port, "role": role}.items() if v is not None
        }
    )
    settings = settings.model_copy(update={"server": server})
    configure_logging(settings)
    child_env = dict(os.environ)
    if source:
        child_env["CALLBRIDGE_SOURCE"] = source
    running = assemble(
        settings,
        engine_mode=engine_mode(settings),
        child_env=child_env,
        serves_http=server.role != "engine",
    )
    try:
        app = _build_app(running.services)
    except ConfigurationError:
        running.close()
        raise
    running.start_sources()
    freeze_startup_objects()
    click.echo(
        f"callbridge {app.version} on http://{server.host}:{server.port} ({_serves(server.role)})",
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


def engine_mode(settings: Settings) -> EngineMode:
    """Where this ``serve`` runs the engine, from its role.

    ``http`` runs none (workers run elsewhere on the journal); ``engine`` runs it in this
    process (the process is the worker, so no child to supervise); ``all`` runs it where
    ``CALLBRIDGE_SERVER__ENGINE`` says, as before roles existed (``engine = none`` there
    still means the same as ``role = http``).
    """
    role = settings.server.role
    if role == "http":
        return "none"
    if role == "engine":
        return "thread"
    return settings.server.engine


def _build_app(services: Services) -> FastAPI:
    from ..server.app import create_app, create_ops_app

    if services.settings.server.role == "engine":
        return create_ops_app(services, manage_engine=True)
    return create_app(services, manage_engine=True)


def _serves(role: str) -> str:
    if role == "engine":
        return "engine worker: /healthz, /readyz, /metrics"
    engine = "" if role == "all" else "no engine, "
    return f"{engine}ingress /pbx/events, panel /agent, API docs /docs"


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
