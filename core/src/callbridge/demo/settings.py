"""The demo's own settings: built from explicit values, never from ``CALLBRIDGE_*`` or ``.env``.

Someone trying the demo may have a real configuration in their environment (a journal URL,
a PBX, a Salesforce org, a strict plugin mode). The demo must work whatever is set there and
must never touch those systems, so its ``Settings`` read only what is passed here.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ..settings import Settings
from ..sim.model import DEFAULT_PASSWORD

#: The simulated company's agents (docs/simulator.md): extension -> PBX login.
DEMO_AGENTS: dict[str, str] = {
    "201": "auth-mario@acme",
    "202": "auth-giulia@acme",
    "203": "auth-luca@acme",
    "204": "auth-sara@acme",
}
#: The simulator's integration user, the one callbridge's SOAP client logs in as.
DEMO_PBX_USER = "auth-callbridge@acme"


class IsolatedSettings(Settings):
    """``Settings`` whose only source is the constructor's arguments."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def new_token(prefix: str) -> str:
    """A random token that is easy to recognise in a URL (``demo-api-...``)."""
    return f"{prefix}-{secrets.token_urlsafe(18)}"


def demo_settings(
    data_dir: Path,
    *,
    soap_url: str,
    ingress_token: str,
    api_token: str,
    host: str = "127.0.0.1",
    port: int = 8765,
    **overrides: Any,
) -> Settings:
    """Settings for callbridge talking to the simulator, with the demo agents' API token.

    The short group window and backoffs keep the demo's timing tight, the lookup budget is
    generous; everything else is callbridge's defaults.
    """
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "default_region": "IT",
        "ingress_token": ingress_token,
        "log_level": "WARNING",
        "server": {
            "host": host,
            "port": port,
            "api_tokens": [f"{api_token}:{'|'.join(DEMO_AGENTS)}"],
            "heartbeat": 5.0,
        },
        "pbx": {
            "soap_url": soap_url,
            "user": DEMO_PBX_USER,
            "password": DEFAULT_PASSWORD,
            "agents": [f"{ext}={login}" for ext, login in DEMO_AGENTS.items()],
            "read_timeout": 10.0,
        },
        # A directory lookup is local and quick; a generous budget keeps pops complete on a
        # loaded machine (CI), where the default 1.5 s could occasionally leave one out.
        "dispatch": {"lookup_budget": 5.0, "backoff_initial": 0.5, "backoff_max": 5.0},
        "tracker": {"group_window": 3.0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return IsolatedSettings(**values)
