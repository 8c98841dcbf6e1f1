"""API tokens: bound to extensions, never shown; CORS for the configured CRM origins."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_support import API_TOKEN, make_settings

from callbridge.errors import ConfigurationError
from callbridge.journal.sqlite import SqliteJournal
from callbridge.server.app import create_app
from callbridge.server.auth import TokenAuth
from callbridge.server.services import Services


def test_grants_and_their_repr() -> None:
    auth = TokenAuth([f"{API_TOKEN}:201|202", "everything-token-0123456789:*"])
    grant = auth.grant_for(API_TOKEN)
    assert grant is not None
    assert grant.allows("201") and grant.allows("202") and not grant.allows("203")
    assert API_TOKEN not in repr(grant)
    admin = auth.grant_for("everything-token-0123456789")
    assert admin is not None and admin.allows("999")
    assert auth.grant_for("nope") is None


@pytest.mark.parametrize("entry", ["Sh0rtSecret:201", "NoScopeSeparatorSecret0123456789"])
def test_bad_token_entries_are_refused_without_echoing_them(entry: str) -> None:
    with pytest.raises(ConfigurationError, match="API_TOKENS") as info:
        TokenAuth([entry])
    assert entry.partition(":")[0] not in str(info.value)


def test_cors_for_a_configured_origin(tmp_path: Path, journal: SqliteJournal) -> None:
    settings = make_settings(tmp_path, cors_origins=["https://crm.example.com"])
    with TestClient(create_app(Services(settings=settings, journal=journal))) as client:
        allowed = client.options(
            "/v1/agents/201/events",
            headers={
                "Origin": "https://crm.example.com",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization,last-event-id",
            },
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://crm.example.com"
        other = client.options(
            "/v1/calls",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers
