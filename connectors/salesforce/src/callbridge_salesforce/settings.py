"""The connector's settings, read from ``CALLBRIDGE_SALESFORCE_*`` variables (and ``.env``).

Validation of single values happens in the model; whether the *set* of credentials is
complete is decided by :meth:`SalesforceSettings.auth`, so that commands which need no
credentials (``callbridge salesforce call-center``) work with only the page settings, and so
that the message can name exactly what is missing for the mode the user was aiming at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from callbridge import CommaList, ConfigurationError, KeyValueMap, OptionalRegion, PluginSettings

ENV_PREFIX = "CALLBRIDGE_SALESFORCE_"

#: Objects the connector knows how to search and attach Tasks to.
SUPPORTED_OBJECTS = ("Contact", "Lead", "Account")

AuthMode = Literal["password", "jwt", "client_credentials", "session"]

_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_VERSION = re.compile(r"^\d{2,3}\.0$")


def _env(name: str) -> str:
    return ENV_PREFIX + name.upper()


@dataclass(frozen=True)
class AuthConfig:
    """A complete set of credentials for one mode, ready for ``simple_salesforce.Salesforce``.

    Kept out of logs: ``repr`` shows the mode only.
    """

    mode: AuthMode
    kwargs: dict[str, Any]

    def __repr__(self) -> str:
        return f"AuthConfig(mode={self.mode!r})"

    @property
    def can_login(self) -> bool:
        """Whether a new session can be obtained when the current one expires."""
        return self.mode != "session"


class SalesforceSettings(PluginSettings):
    """Everything the Salesforce connector reads from ``CALLBRIDGE_SALESFORCE_*``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    # --- authentication -------------------------------------------------------------------
    #: Which credentials to use; empty: chosen from the variables that are set.
    auth_mode: AuthMode | None = None
    #: Username (password, and JWT bearer modes).
    username: str | None = None
    #: Password (password mode).
    password: SecretStr | None = None
    #: Security token appended to the password (password mode).
    security_token: SecretStr | None = None
    #: ``login`` (production), ``test`` (sandbox) or a My Domain such as ``acme.my``.
    domain: str = "login"
    #: Connected app consumer key (JWT bearer and client credentials modes).
    consumer_key: SecretStr | None = None
    #: Connected app consumer secret (client credentials mode).
    consumer_secret: SecretStr | None = None
    #: Private key file for the JWT bearer flow (or give the key itself in PRIVATE_KEY).
    private_key_file: Path | None = None
    #: Private key for the JWT bearer flow, PEM text.
    private_key: SecretStr | None = None
    #: An existing session id (session mode, with INSTANCE_URL).
    session_id: SecretStr | None = None
    #: The org's instance URL, ``https://acme.my.salesforce.com`` (session mode).
    instance_url: str | None = None
    #: REST API version.
    api_version: str = "62.0"
    #: Seconds to wait for Salesforce on every request.
    timeout: float = Field(default=15.0, gt=0)
    #: A CA bundle for TLS (a company proxy); empty: the system's.
    ca_bundle: Path | None = None
    #: Seconds before a failed delivery is tried again (the core never retries sooner):
    #: after a rate limit or an outage (Salesforce sends no Retry-After), after a network
    #: failure or lock contention, and after failing credentials.
    backoff_outage: float = Field(default=300.0, gt=0)
    backoff_network: float = Field(default=30.0, gt=0)
    backoff_auth: float = Field(default=600.0, gt=0)

    # --- lookup ---------------------------------------------------------------------------
    #: Objects searched, best first.
    objects: CommaList = Field(default_factory=lambda: list(SUPPORTED_OBJECTS))
    #: Region for numbers without a country code; empty: the core's default region.
    default_region: OptionalRegion = None
    #: Seconds the core caches a contact found (and a "not found") in Salesforce; empty:
    #: the core's ``CALLBRIDGE_DISPATCH__CACHE_TTL`` and ``__CACHE_NEGATIVE_TTL``.
    cache_ttl: float | None = Field(default=None, ge=0)
    cache_negative_ttl: float | None = Field(default=None, ge=0)
    #: Base URL of the Lightning UI for record links; empty: derived from the instance URL.
    lightning_url: str | None = None

    # --- activities -----------------------------------------------------------------------
    #: ``extension``: the User whose Extension field is the PBX extension; ``map``: only
    #: ``owner_map``; ``none``: Tasks belong to the integration user.
    owner_source: Literal["extension", "map", "none"] = "extension"
    #: ``201=005xx000001AbCD,202=jane@example.com``: user id or username per extension
    #: (checked before the User.Extension query).
    owner_map: KeyValueMap = Field(default_factory=dict)
    #: Seconds an extension's owner stays cached.
    owner_cache_ttl: float = Field(default=600.0, ge=0)
    #: A custom external-id field on Task (``Callbridge_Key__c``) for upserts; empty:
    #: look for the CallObject before creating.
    task_external_id_field: str | None = None
    #: Time zone of the Tasks' ActivityDate (the day of the call), an IANA name such as
    #: ``Europe/Rome``; empty: the org's default time zone (Organization.TimeZoneSidKey,
    #: read once), UTC if it cannot be read.
    time_zone: str | None = None
    #: Task Status and Priority picklist values.
    task_status: str = "Completed"
    task_priority: str = "Normal"
    #: CallDisposition per outcome (answered, missed, rejected, unknown).
    disposition_answered: str = "Answered"
    disposition_missed: str = "Missed"
    disposition_rejected: str = "Rejected"
    disposition_unknown: str = "Unknown"
    #: Task Subject per direction; ``{number}`` is the remote number.
    subject_inbound: str = "Inbound call from {number}"
    subject_outbound: str = "Outbound call to {number}"
    subject_internal: str = "Internal call with {number}"
    #: Create a Lead for callers found nowhere (off: such calls get a Task with no WhoId).
    create_leads: bool = False
    #: Company and LeadSource of the Leads created for unknown callers.
    lead_company: str = "Unknown"
    lead_source: str | None = "Phone Inquiry"

    # --- Open CTI softphone page ----------------------------------------------------------
    #: The URL where Salesforce reaches callbridge (``https://callbridge.example.com``).
    public_url: str | None = None
    #: Where the page loads ``opencti_min.js``; empty: derived from the Lightning URL.
    opencti_url: str | None = None
    #: Base URL of callbridge's API as seen from the agent's browser; empty: the page's origin.
    api_base_url: str = ""
    #: Internal and display names of the Call Center definition.
    call_center_name: str = "CallbridgeOpenCTI"
    call_center_display_name: str = "callbridge"
    #: Size of the softphone panel in pixels.
    softphone_width: int = Field(default=300, ge=200, le=2000)
    softphone_height: int = Field(default=400, ge=200, le=2000)

    @field_validator("objects")
    @classmethod
    def _check_objects(cls, value: list[str]) -> list[str]:
        known = {name.lower(): name for name in SUPPORTED_OBJECTS}
        result: list[str] = []
        for item in value:
            name = known.get(item.strip().lower())
            if name is None:
                raise ValueError(f"{item!r} is not one of {', '.join(SUPPORTED_OBJECTS)}")
            if name not in result:
                result.append(name)
        if not result:
            raise ValueError("name at least one object")
        return result

    @field_validator("api_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        text = value.strip().lstrip("vV")
        if "." not in text:
            text += ".0"
        if not _VERSION.match(text):
            raise ValueError(f"{value!r} is not an API version such as 62.0")
        return text

    @field_validator("task_external_id_field")
    @classmethod
    def _check_field(cls, value: str | None) -> str | None:
        if value is not None and value.strip() == "":
            return None
        if value is not None and not _API_NAME.match(value.strip()):
            raise ValueError(f"{value!r} is not a field API name such as Callbridge_Key__c")
        return value.strip() if value is not None else None

    @field_validator("time_zone")
    @classmethod
    def _check_zone(cls, value: str | None) -> str | None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if value is None or not value.strip():
            return None
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone such as Europe/Rome") from None
        return value.strip()

    @field_validator("instance_url", "lightning_url", "public_url", "opencti_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        text = value.strip().rstrip("/")
        if not text.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} must start with https://")
        return text

    @field_validator("domain")
    @classmethod
    def _check_domain(cls, value: str) -> str:
        text = value.strip().lower()
        text = text.removeprefix("https://").removesuffix("/").removesuffix(".salesforce.com")
        if not text or not re.match(r"^[a-z0-9][a-z0-9.-]*$", text):
            raise ValueError(f"{value!r} is not login, test or a My Domain such as acme.my")
        return text

    @field_validator("subject_inbound", "subject_outbound", "subject_internal")
    @classmethod
    def _check_subject(cls, value: str) -> str:
        try:
            value.format(number="+3906", name="x", extension="201")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{value!r}: only {{number}}, {{name}} and {{extension}} may be used ({exc})"
            ) from None
        return value

    # --- credentials ----------------------------------------------------------------------

    def _present(self) -> dict[str, bool]:
        return {
            "username": bool(self.username),
            "password": self.password is not None,
            "security_token": self.security_token is not None,
            "consumer_key": self.consumer_key is not None,
            "consumer_secret": self.consumer_secret is not None,
            "private_key": self.private_key is not None or self.private_key_file is not None,
            "session_id": self.session_id is not None,
            "instance_url": bool(self.instance_url),
        }

    def _guess_mode(self) -> AuthMode | None:
        has = self._present()
        if has["session_id"]:
            return "session"
        if has["private_key"]:
            return "jwt"
        if has["password"] or has["security_token"]:
            return "password"
        if has["consumer_secret"]:
            return "client_credentials"
        if has["username"] and has["consumer_key"]:
            return "jwt"
        if has["username"]:
            return "password"
        if has["consumer_key"]:
            return "client_credentials"
        if has["instance_url"]:
            return "session"
        return None

    def has_credentials(self) -> bool:
        """Whether any credential variable (or an explicit auth mode) is set at all."""
        return self.auth_mode is not None or any(self._present().values())

    def auth(self) -> AuthConfig:
        """The credentials for the chosen (or guessed) mode, or a ConfigurationError.

        The message names every missing variable for that mode and lists the modes.
        """
        mode = self.auth_mode or self._guess_mode()
        if mode is None:
            raise ConfigurationError(
                "Salesforce credentials missing: set one of\n"
                f"  {_env('username')} + {_env('password')} + {_env('security_token')}"
                " (username and password)\n"
                f"  {_env('username')} + {_env('consumer_key')} + {_env('private_key_file')}"
                f" or {_env('private_key')} (OAuth JWT bearer)\n"
                f"  {_env('consumer_key')} + {_env('consumer_secret')} + {_env('domain')}"
                " (client credentials)\n"
                f"  {_env('session_id')} + {_env('instance_url')} (existing session)"
            )
        has = self._present()
        required: dict[AuthMode, list[str]] = {
            "password": ["username", "password", "security_token"],
            "jwt": ["username", "consumer_key", "private_key"],
            "client_credentials": ["consumer_key", "consumer_secret"],
            "session": ["session_id", "instance_url"],
        }
        missing = [name for name in required[mode] if not has[name]]
        if mode == "client_credentials" and self.domain in ("login", "test"):
            missing.append("domain")
        if missing:
            names = [
                f"{_env('private_key_file')} or {_env('private_key')}"
                if name == "private_key"
                else (
                    f"{_env('domain')} (your My Domain, e.g. acme.my)"
                    if name == "domain"
                    else _env(name)
                )
                for name in missing
            ]
            label = {
                "password": "username and password",
                "jwt": "OAuth JWT bearer",
                "client_credentials": "client credentials",
                "session": "existing session",
            }[mode]
            raise ConfigurationError(
                f"Salesforce {label} authentication is incomplete: missing {', '.join(names)}"
            )
        key_file = self.private_key_file
        if mode == "jwt" and self.private_key is None and key_file and not key_file.is_file():
            raise ConfigurationError(
                f"{_env('private_key_file')}: {key_file} is not a readable file"
            )
        return AuthConfig(mode=mode, kwargs=self._kwargs(mode))

    def _kwargs(self, mode: AuthMode) -> dict[str, str]:
        def secret(value: SecretStr | None) -> str:
            return value.get_secret_value() if value is not None else ""

        if mode == "password":
            return {
                "username": self.username or "",
                "password": secret(self.password),
                "security_token": secret(self.security_token),
                "domain": self.domain,
            }
        if mode == "jwt":
            result = {
                "username": self.username or "",
                "consumer_key": secret(self.consumer_key),
                "domain": self.domain,
            }
            if self.private_key is not None:
                result["privatekey"] = secret(self.private_key)
            else:
                result["privatekey_file"] = str(self.private_key_file)
            return result
        if mode == "client_credentials":
            return {
                "consumer_key": secret(self.consumer_key),
                "consumer_secret": secret(self.consumer_secret),
                "domain": self.domain,
            }
        return {"session_id": secret(self.session_id), "instance_url": self.instance_url or ""}

    def disposition(self, outcome: str) -> str:
        """The CallDisposition label for a callbridge outcome."""
        return {
            "answered": self.disposition_answered,
            "missed": self.disposition_missed,
            "rejected": self.disposition_rejected,
        }.get(outcome, self.disposition_unknown)
