"""Constants and settings shared by the HTTP service tests."""

from __future__ import annotations

from pathlib import Path

from callbridge.settings import Settings

INGRESS_TOKEN = "ingress-token-0123456789"
API_TOKEN = "api-token-for-201-0123456789"
ADMIN_TOKEN = "api-token-for-all-0123456789"


def make_settings(tmp_path: Path, **server: object) -> Settings:
    """Settings with an ingress token, two API tokens and two agents."""
    return Settings(
        data_dir=tmp_path,
        ingress_token=INGRESS_TOKEN,  # type: ignore[arg-type]
        server={  # type: ignore[arg-type]
            "api_tokens": [f"{API_TOKEN}:201", f"{ADMIN_TOKEN}:*"],
            **server,
        },
        pbx={"agents": ["201=auth-mario@acme", "202=auth-luigi@acme"]},  # type: ignore[arg-type]
    )
