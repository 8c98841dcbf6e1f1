"""``CALLBRIDGE_PIPEDRIVE_*``: everything the Pipedrive connector reads from the environment.

The company domain and one credential are required: an API token (a user's personal token,
the usual choice for one company's own integration) or OAuth tokens of an app (access token,
plus refresh token, client id and client secret to renew it when Pipedrive answers 401).
Mappings take ``key=value`` pairs separated by commas, or a JSON object.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from callbridge import KeyValueMap, OptionalRegion, PluginSettings

ENV_PREFIX = "CALLBRIDGE_PIPEDRIVE_"
_COMPANY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class PipedriveSettings(PluginSettings):
    """The connector's settings; see docs/connectors/pipedrive.md."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    #: The company's Pipedrive domain: ``acme``, ``acme.pipedrive.com`` or its URL. Record
    #: links (``https://acme.pipedrive.com/person/42``) and the API live there.
    company_domain: str
    #: A personal API token (Settings > Personal preferences > API in Pipedrive).
    api_token: SecretStr | None = None
    #: Where the API token goes: the ``x-api-token`` header, or the ``api_token`` query
    #: parameter (only for proxies that drop unknown headers; query strings get logged).
    token_in: Literal["header", "query"] = "header"  # noqa: S105 - a place, not a secret
    #: OAuth app tokens instead of an API token; the access token is renewed with the refresh
    #: token (client id and secret of the app) when Pipedrive answers 401.
    access_token: SecretStr | None = None
    refresh_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    #: Pipedrive's OAuth token endpoint; tests point it at a local server.
    oauth_token_url: str = "https://oauth.pipedrive.com/oauth/token"  # noqa: S105 - a URL
    #: API base URL; empty: ``https://<company>.pipedrive.com``. Tests point it elsewhere.
    api_url: str | None = None
    #: A CA bundle for TLS (a company proxy, the tests' fake Pipedrive); empty: the system's.
    ca_bundle: Path | None = None
    #: PBX extension or PBX user -> Pipedrive user id (``201=123,202=124``).
    users: KeyValueMap = Field(default_factory=dict)
    #: PBX extension or PBX user -> e-mail of a Pipedrive user, resolved by the users API.
    user_emails: KeyValueMap = Field(default_factory=dict)
    #: When the PBX user name is itself an e-mail address, look it up among the users.
    user_from_user_email: bool = True
    #: Seconds user ids found by e-mail are cached.
    user_cache_ttl: float = Field(default=3600.0, ge=0)
    #: Seconds the core caches a person found (or not found); empty: the core's defaults.
    lookup_cache_ttl: float | None = Field(default=None, ge=0)
    lookup_negative_ttl: float | None = Field(default=None, ge=0)
    #: Recent call logs read to find the one an uncertain earlier attempt created.
    adoption_window: int = Field(default=100, ge=1, le=500)
    #: Seconds to wait after a 429 when Pipedrive sends neither Retry-After nor a reset.
    rate_limit_wait: float = Field(default=10.0, gt=0)
    #: Connect and read timeouts of each API request, in seconds.
    timeout: float = Field(default=10.0, gt=0)
    #: Region for numbers without a country code (default: CALLBRIDGE_DEFAULT_REGION or IT).
    default_region: OptionalRegion = None
    #: Where the call-log ledger lives (default: CALLBRIDGE_DATA_DIR).
    data_dir: Path | None = None

    @field_validator("company_domain")
    @classmethod
    def _check_company(cls, value: str) -> str:
        text = value.strip().lower().removeprefix("https://").removeprefix("http://")
        text = text.rstrip("/").removesuffix(".pipedrive.com")
        if not _COMPANY.match(text):
            raise ValueError(f"{value!r} is not a Pipedrive company domain (acme.pipedrive.com)")
        return text

    @field_validator("api_url", "oauth_token_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip().rstrip("/")
        if not text.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return text

    @model_validator(mode="after")
    def _check_credentials(self) -> PipedriveSettings:
        token = self.api_token.get_secret_value().strip() if self.api_token else ""
        access = self.access_token.get_secret_value().strip() if self.access_token else ""
        if not token and not access:
            raise ValueError(
                "set CALLBRIDGE_PIPEDRIVE_API_TOKEN, or CALLBRIDGE_PIPEDRIVE_ACCESS_TOKEN "
                "(OAuth) with its REFRESH_TOKEN, CLIENT_ID and CLIENT_SECRET"
            )
        if access and self.refresh_token and not (self.client_id and self.client_secret):
            raise ValueError(
                "a REFRESH_TOKEN needs CALLBRIDGE_PIPEDRIVE_CLIENT_ID and CLIENT_SECRET"
            )
        return self

    @property
    def web_url(self) -> str:
        """``https://<company>.pipedrive.com``: where the records are shown."""
        return f"https://{self.company_domain}.pipedrive.com"

    @property
    def base_url(self) -> str:
        """The API's base URL (``api_url`` or the company's domain)."""
        return self.api_url or self.web_url

    @property
    def uses_oauth(self) -> bool:
        """Whether requests carry the OAuth access token (no API token set)."""
        return not (self.api_token and self.api_token.get_secret_value().strip())
