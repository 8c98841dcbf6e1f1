"""Real processes for the scale-out tests: a redis-server, ``callbridge serve --role ...``
instances on it, and an agent stream reader.

Every service gets its own data directory (nothing is shared but Redis) and the same journal
URL; the engine's ``directory`` connector writes its activities in the engine's directory.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from server_support import API_TOKEN, INGRESS_TOKEN, SseReader
from service_support import Service

from callbridge.testing import services


def need_redis() -> None:
    """Skip (or fail, in CI) when redis-server is missing."""
    services.require("redis")


def role_service(data_dir: Path, journal: str, role: str, **env: str) -> Service:
    """A ``callbridge serve --role <role>`` (not started) on the journal ``journal``."""
    service = Service(data_dir, CALLBRIDGE_JOURNAL=journal, **env)
    service.start_args = ("--role", role)
    return service


def agent_stream(service: Service, extension: str = "201", **headers: str) -> SseReader:
    """The agent's SSE stream on ``service``."""
    return SseReader(
        service.port,
        f"/v1/agents/{extension}/events",
        {"Authorization": f"Bearer {API_TOKEN}", **headers},
    )


def post_event(service: Service, params: dict[str, str]) -> httpx.Response:
    """One PBX event to ``service``'s ingress."""
    return httpx.get(
        f"{service.url}/pbx/events", params={**params, "token": INGRESS_TOKEN}, timeout=30
    )


def pop_states(reader: SseReader, call_id: str) -> list[str]:
    """The states of the pops ``reader`` got for ``call_id``, in order."""
    return [
        m.json()["state"]
        for m in reader.events()
        if m.event == "pop" and m.json()["call"]["user_call_id"] == call_id
    ]
