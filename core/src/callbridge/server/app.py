"""The ASGI application: PBX ingress, click-to-call API, agent stream, operations, plugins.

``create_app(services)`` builds it from parts that already exist, so tests, the demo and
``callbridge serve`` assemble the same application. With ``manage_engine=True`` the app's
lifespan starts and stops the engine (and the plugins' ``startup``/``shutdown`` hooks).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from starlette.types import Receive, Scope, Send

from .. import __version__, metrics
from ..errors import ConfigurationError
from . import calls, contacts, ingress, ingress_openapi, ops, panel, recordings, stream, wrapups
from .auth import TokenAuth
from .services import Services

log = logging.getLogger("callbridge.server")

DESCRIPTION = """\
callbridge links a VOIspeed PBX to CRMs.

* **PBX ingress** (`/pbx/events`): the URL the PBX or its MySQL trigger calls for each event.
* **Click-to-call** (`/v1/calls`): CRM softphone pages and scripts place and control calls.
* **Agent stream** (`/v1/agents/{extension}/events`): screen-pops as Server-Sent Events.
* **Operations**: `/healthz`, `/readyz`, `/metrics`.

API calls take `Authorization: Bearer <token>`; tokens are bound to the extensions they may
act for (`CALLBRIDGE_SERVER__API_TOKENS`).
"""


class CallbridgeApp(FastAPI):
    """FastAPI, with the PBX ingress answered before the middleware stack.

    ``/pbx/events`` is the one hot path: the PBX's database write waits for it. It needs no
    routing, dependency injection, CORS or exception middleware (it never raises for bad
    input), so requests for it go straight to the plain ASGI ``Ingress``.
    """

    pbx_ingress: ingress.Ingress | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.pbx_ingress is not None
            and scope["type"] == "http"
            and scope["path"] in ingress.PATHS
        ):
            await self.pbx_ingress(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def check_security(services: Services) -> None:
    """Refuse to serve the ingress without a token, unless explicitly insecure."""
    settings = services.settings
    if not services.companies.single and not settings.server.insecure:
        bare = [c.name for c in services.companies if c.ingress_token is None]
        if bare:
            raise ConfigurationError(
                f"companies {', '.join(bare)} have no ingress_token: their events could not "
                "be told apart from anyone's. Give each company its own token in "
                "CALLBRIDGE_COMPANIES_FILE."
            )
        return
    if settings.ingress_token is None and not settings.server.insecure:
        raise ConfigurationError(
            "CALLBRIDGE_INGRESS_TOKEN is not set: the PBX ingress would accept events from "
            "anyone. Set a long random token (the PBX sends it as the 'token' parameter), or "
            "set CALLBRIDGE_SERVER__INSECURE=true for local experiments only."
        )


def _lifespan(services: Services, manage_engine: bool) -> Any:
    """Start the engine with the app and stop it after, when the app manages it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = services.engine
        if manage_engine and engine is not None:
            await anyio.to_thread.run_sync(engine.start)
        try:
            yield
        finally:
            if manage_engine and engine is not None:
                await anyio.to_thread.run_sync(engine.stop)

    return lifespan


def create_ops_app(services: Services, *, manage_engine: bool = False) -> FastAPI:
    """``serve --role engine``: the engine's health and metrics, and nothing else.

    A worker takes no PBX events and serves no agent, so it needs no token; what an
    orchestrator needs is ``/readyz`` telling whether its dispatcher is healthy.
    """
    app = FastAPI(
        title="callbridge engine",
        version=__version__,
        lifespan=_lifespan(services, manage_engine),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.services = services
    app.include_router(ops.build_router(services))
    return app


def create_app(services: Services, *, manage_engine: bool = False) -> FastAPI:
    """Build the application around ``services``."""
    check_security(services)
    auth = TokenAuth.of_companies(services.companies)
    services.reloaded.append(auth.reset)
    app = CallbridgeApp(
        title="callbridge",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(services, manage_engine),
        docs_url="/docs",
        redoc_url=None,
    )
    origins = services.settings.server.cors_origins
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            max_age=600,
        )
    app.state.services = services
    metrics.watch_deliveries(services.journal.delivery_counts)
    app.pbx_ingress = ingress.Ingress(services)
    app.include_router(calls.build_router(services, auth))
    app.include_router(wrapups.build_router(services, auth))
    app.include_router(recordings.build_router(services, auth))
    app.include_router(contacts.build_router(services, auth))
    app.include_router(stream.build_router(services, auth))
    app.include_router(ops.build_router(services))
    app.include_router(panel.build_router(services))
    _mount_plugins(app, services)
    _document_ingress(app)
    return app


def _document_ingress(app: FastAPI) -> None:
    """Add ``/pbx/events`` (not a FastAPI route) to the OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema["paths"] = {**ingress_openapi.openapi_paths(), **schema["paths"]}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _mount_plugins(app: FastAPI, services: Services) -> None:
    """Each plugin's ``register_routes`` gets its own router under ``/plugins/<name>``."""
    plugins = services.plugins
    if plugins is None:
        return
    routers = plugins.register_routes(
        lambda name: APIRouter(prefix=f"/plugins/{name}", tags=[f"Plugin: {name}"])
    )
    for router in routers:
        app.include_router(router)
