"""``CALLBRIDGE_HUBSPOT_*``: everything the HubSpot connector reads from the environment.

Only the access token is required; every other value has a default that works for a
standard HubSpot account (portal id and UI domain are read from the account-info API when
left empty). Mappings take ``key=value`` pairs separated by commas, or a JSON object.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from callbridge import KeyValueMap, OptionalRegion, PluginSettings

ENV_PREFIX = "CALLBRIDGE_HUBSPOT_"


class Dispositions(BaseModel):
    """HubSpot call outcome ids (``hs_call_disposition``): the account's defaults.

    Accounts can add their own outcomes; set the GUIDs shown by the properties API
    (``GET /crm/v3/properties/calls/hs_call_disposition``) to use them.
    """

    connected: str = "f240bbac-87c9-4f6e-bf70-924b57d47db7"
    no_answer: str = "73a0d17f-1163-4015-bdd5-ec830791da20"
    busy: str = "9d9162e7-6cf3-4944-bf63-4dff82258764"
    left_voicemail: str = "b2cf5968-551e-4856-9783-52b3da59a7d0"
    wrong_number: str = "17b47fee-58de-441e-a44c-c6300d46f273"


class HubSpotSettings(PluginSettings):
    """The connector's settings; the access token is the only one without a default."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    #: Private app access token (``pat-...``). Scopes: see docs/connectors/hubspot.md.
    access_token: SecretStr
    #: API base URL; tests point it at a local server.
    api_host: str = "https://api.hubapi.com"
    #: HubSpot account id and UI domain for record links; read from the API when empty.
    portal_id: str | None = None
    ui_domain: str | None = None
    #: PBX extension or PBX user -> HubSpot owner id (``201=5123,202=5124``).
    owners: KeyValueMap = Field(default_factory=dict)
    #: PBX extension or PBX user -> e-mail of a HubSpot user, resolved by the owners API.
    owner_emails: KeyValueMap = Field(default_factory=dict)
    #: When the PBX user name is itself an e-mail address, look it up among the owners.
    owner_from_user_email: bool = True
    #: Create a contact for callers nobody knows (off: the call is logged unassociated).
    create_contacts: bool = False
    #: hs_call_disposition GUIDs per outcome (``DISPOSITIONS__NO_ANSWER=...``).
    dispositions: Dispositions = Field(default_factory=Dispositions)
    #: Searches per second (HubSpot allows about 5 per account) and the burst size.
    search_rate: float = Field(default=4.0, gt=0, le=50)
    search_burst: int = Field(default=1, ge=1, le=10)
    #: Seconds the core caches a contact found (or not found) in HubSpot; empty: the core's
    #: ``CALLBRIDGE_DISPATCH__CACHE_TTL`` and ``__CACHE_NEGATIVE_TTL``.
    lookup_cache_ttl: float | None = Field(default=None, ge=0)
    lookup_negative_ttl: float | None = Field(default=None, ge=0)
    #: Seconds owners and account details are cached.
    owner_cache_ttl: float = Field(default=3600.0, ge=0)
    #: Several contacts match: the most recent activity wins only when it is newer than the
    #: runner-up by at least this many seconds; otherwise the pop is ambiguous.
    ambiguity_margin: float = Field(default=3600.0, ge=0)
    #: Pages of search results read for one number (100 contacts a page).
    max_search_pages: int = Field(default=2, ge=1, le=10)
    #: Seconds HubSpot's search may lag behind a write (see "exactly once" in the docs).
    search_lag: float = Field(default=60.0, ge=0)
    #: A custom call property with unique values: engagements are then upserted on it.
    unique_property: str | None = None
    #: Connect and read timeouts of each API request, in seconds.
    timeout: float = Field(default=10.0, gt=0)
    #: Region for numbers without a country code (default: CALLBRIDGE_DEFAULT_REGION or IT).
    default_region: OptionalRegion = None
    #: Where the engagement ledger lives (default: CALLBRIDGE_DATA_DIR).
    data_dir: Path | None = None
    #: Calling extension: public URL of callbridge as HubSpot's browser reaches it.
    public_url: str | None = None
    #: Calling extension registration: the app id and the developer account's API key.
    app_id: int | None = None
    developer_api_key: SecretStr | None = None
    #: The calling extension's name as HubSpot shows it.
    extension_name: str = "callbridge"

    @field_validator("access_token")
    @classmethod
    def _check_token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("api_host", "public_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip().rstrip("/")
        if not text.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return text
