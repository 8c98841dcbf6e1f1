"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import metrics
from ..versions import installed_versions
from .engine_link import EngineLink
from .services import Services


def build_router(services: Services) -> APIRouter:
    """``/healthz``, ``/readyz``, ``/metrics``."""
    router = APIRouter(tags=["Operations"])

    versions = installed_versions()  # what this process loaded; an upgrade needs a restart
    health: dict[str, object] = {
        "status": "ok",
        "version": versions["callbridge"],
        "versions": versions,
    }

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, object]:
        """Always ``ok`` while the event loop runs, with the versions of the core and of every
        installed connector (``callbridge --version`` prints the same), for a support request.
        """
        return health

    @router.get("/readyz", summary="Ready to take events")
    async def readyz() -> JSONResponse:
        """503 unless the journal takes writes (with the Redis journal's ``wait_replicas``:
        and enough replicas confirm them) and, where this service runs an engine (roles
        ``all`` and ``engine``), its dispatcher is healthy. The body lists the problems."""
        problems = []
        try:
            await anyio.to_thread.run_sync(services.journal.check_writable)
        except Exception as exc:
            problems.append(f"journal: {exc}")
        engine = services.engine
        problem = engine.problem if engine is not None else None
        if problem:
            problems.append(f"engine: {problem}")
        elif engine is not None and not engine.running:
            problems.append("dispatcher: not running")
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus(company: str | None = None) -> Response:
        """Text exposition format; ``?company=NAME``: only that company's series.

        Collecting counts deliveries in the journal: that query runs in a worker thread, off
        the event loop that answers the PBX.
        """
        body = await anyio.to_thread.run_sync(_collect, services)
        if company is not None:
            body = await anyio.to_thread.run_sync(metrics.only_company, body, company)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router


def _collect(services: Services) -> bytes:
    """This process's metrics and, when the engine runs in a child, the child's too."""
    if not isinstance(services.engine, EngineLink):
        return generate_latest(metrics.REGISTRY)
    engine_text = services.engine.metrics_text()
    return metrics.exposition([engine_text] if engine_text else [])
