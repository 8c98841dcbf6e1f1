"""``CALLBRIDGE_ZOHO_*``: everything the Zoho CRM connector reads from the environment.

The self-client's client id, client secret and refresh token are required; everything else
has a default that works for a standard Zoho CRM organisation in the ``com`` data centre.
Mappings take ``key=value`` pairs separated by commas, or a JSON object.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from callbridge import CommaList, KeyValueMap, OptionalRegion, PluginSettings

ENV_PREFIX = "CALLBRIDGE_ZOHO_"

#: Zoho's data centres, by the domain suffix their users see (``crm.zoho.<dc>``).
DataCentre = Literal["com", "eu", "in", "com.au", "jp", "ca", "com.cn", "sa", "uk"]

#: The modules a caller is searched in, best first; Zoho's API names.
SEARCHABLE_MODULES = ("Contacts", "Leads", "Accounts")


class ZohoSettings(PluginSettings):
    """The connector's settings; the three OAuth values are the only ones without a default."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    #: Self-client id (api-console.zoho.<dc>, "Self Client"). See docs/connectors/zoho.md.
    client_id: str
    #: Self-client secret.
    client_secret: SecretStr
    #: Refresh token of the self-client (scopes: see docs/connectors/zoho.md).
    refresh_token: SecretStr
    #: Data centre of the Zoho account: com, eu, in, com.au, jp, ca, com.cn, sa or uk.
    data_centre: DataCentre = "com"
    #: Overrides of the data centre's hosts (tests point them at a local server): the
    #: accounts server (tokens), the API domain (``www.zohoapis.<dc>``; empty: the one the
    #: token answer names) and the CRM's web address (record links).
    accounts_url: str | None = None
    api_url: str | None = None
    crm_url: str | None = None
    #: Version of the CRM REST API (``/crm/v7/...``).
    api_version: int = Field(default=7, ge=2, le=8)
    #: The organisation in record links (``org12345678`` or ``12345678``); read from the org
    #: API when empty.
    org_id: str | None = None
    #: Modules a caller is searched in, best first (``Contacts,Leads,Accounts``).
    modules: CommaList = Field(default_factory=lambda: list(SEARCHABLE_MODULES))
    #: PBX extension or PBX user -> Zoho user id (``201=4150868000000225013``).
    owners: KeyValueMap = Field(default_factory=dict)
    #: PBX extension or PBX user -> e-mail of a Zoho user, resolved by the users API.
    owner_emails: KeyValueMap = Field(default_factory=dict)
    #: When the PBX user name is itself an e-mail address, look it up among the users.
    owner_from_user_email: bool = True
    #: API name of the Calls custom field holding callbridge's key of the call (single line,
    #: "do not allow duplicate values"): calls are found by it and upserted on it.
    key_field: str = "Callbridge_Key"
    #: Outcome -> value of the Call_Result picklist (``answered=Interested,missed=...``;
    #: outcomes: answered, missed, busy, cancelled, failed). Empty: Call_Result is not set.
    call_results: KeyValueMap = Field(default_factory=dict)
    #: Time zone of Call_Start_Time's offset (``Europe/Rome``); empty: UTC.
    time_zone: str | None = None
    #: Requests to Zoho at once (Zoho's concurrency limit is per edition, 10 and up).
    max_concurrency: int = Field(default=5, ge=1, le=25)
    #: Seconds before its expiry an access token is refreshed.
    refresh_margin: float = Field(default=300.0, ge=0)
    #: Seconds to wait after a 429 that names no Retry-After.
    rate_limit_wait: float = Field(default=60.0, gt=0)
    #: Seconds users and the organisation's details are cached.
    owner_cache_ttl: float = Field(default=3600.0, ge=0)
    #: Connect and read timeout of each request, in seconds.
    timeout: float = Field(default=10.0, gt=0)
    #: Region for numbers without a country code (default: CALLBRIDGE_DEFAULT_REGION or IT).
    default_region: OptionalRegion = None

    @field_validator("client_id", "client_secret", "refresh_token")
    @classmethod
    def _not_empty(cls, value: str | SecretStr) -> str | SecretStr:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not text.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("accounts_url", "api_url", "crm_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        text = value.strip().rstrip("/")
        if not text.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return text

    @field_validator("modules")
    @classmethod
    def _check_modules(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in SEARCHABLE_MODULES]
        if unknown or not value:
            raise ValueError(f"choose among {', '.join(SEARCHABLE_MODULES)} (got {value})")
        return value

    @field_validator("time_zone")
    @classmethod
    def _check_zone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone name (Europe/Rome, say)") from None
        return value.strip()

    def org_path(self) -> str | None:
        """``org12345678`` from ``org_id``, or None when it is to be read from Zoho."""
        if not self.org_id or not self.org_id.strip():
            return None
        text = self.org_id.strip()
        return text if text.startswith("org") else f"org{text}"
