"""The companies file (``CALLBRIDGE_COMPANIES_FILE``), read through pydantic-settings.

A reseller's PBX hosts many companies; each needs its own ingress token, API tokens, PBX
credentials, agents and connector instances. The file is TOML (one ``[companies.NAME]``
table per company, see docs/companies.md); every value may be overridden from the
environment (``CALLBRIDGE_COMPANIES__ACME__PLUGINS__HUBSPOT__ACCESS_TOKEN``, the usual
nested delimiter), and every secret may be a file (``ingress_token_file``,
``password_file``, a plugin's ``access_token_file``), because secrets belong in Docker
secrets or systemd credentials, not in a file many people read.

Errors name the company and the field, as a path in the file and as the variable that
would override it, so a typo in company 37 of 100 is found at once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ..errors import ConfigurationError
from ..settings import ENV_PREFIX, PbxSettings
from ..settings_types import parse_comma_list
from .files import resolve_files

#: A company's name: it goes into plugin instance names (``hubspot@acme``), metric labels,
#: CLI options and journal keys, so it is kept to what is safe in all of them.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

#: Fields of ``[companies.X.pbx_client]`` that belong to one company and are never taken
#: from the shared ``CALLBRIDGE_PBX__*`` settings: credentials and agents.
OWN_PBX_FIELDS = frozenset(
    {"user", "password", "password_md5", "seri_token", "agents", "agent_devices"}
)
#: Secret fields a company may give as ``X_file``.
_COMPANY_SECRETS = ("ingress_token",)
_PBX_SECRETS = ("password", "password_md5", "seri_token")


class CompanyConfig(BaseModel):
    """One ``[companies.NAME]`` table as written (after ``*_file`` secrets are read)."""

    model_config = ConfigDict(extra="forbid")

    #: The PBX's ``companyid`` (the callback parameter, the monitor tables' column).
    company_id: str = Field(min_length=1, max_length=64)
    #: Which PBX, a free name: two PBXes may both have a company 1.
    pbx: str = Field(default="default", min_length=1, max_length=64)
    #: The token the PBX sends for this company (its URL in the company's properties).
    ingress_token: SecretStr | None = None
    #: ``token:ext1|ext2`` entries, as ``CALLBRIDGE_SERVER__API_TOKENS``, for this company.
    api_tokens: list[SecretStr] = Field(default_factory=list)
    #: The fields of ``CALLBRIDGE_PBX__*`` for this company (credentials, agents...).
    #: Out of repr: it may hold a password in plain text (validated as PbxSettings later).
    pbx_client: dict[str, Any] = Field(default_factory=dict, repr=False)
    #: One table per connector instance: the plugin's own settings (out of repr: tokens).
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict, repr=False)

    @field_validator("company_id", mode="before")
    @classmethod
    def _text_id(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        return parse_comma_list(value)

    @field_validator("plugins", mode="before")
    @classmethod
    def _empty_tables(cls, value: object) -> object:
        """``plugins = ["directory"]`` is short for one empty table per plugin."""
        if isinstance(value, list | tuple):
            return {str(name): {} for name in value}
        return value


class CompaniesFile(BaseSettings):
    """The whole file; the TOML source is bound per load (see ``read_companies_file``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    companies: dict[str, CompanyConfig] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: Any) -> Any:
        """Read every ``X_file`` secret, naming the company and the field when one fails."""
        if not isinstance(data, dict) or not isinstance(data.get("companies"), dict):
            return data
        companies = {}
        for name, table in data["companies"].items():
            if not isinstance(table, dict):
                companies[name] = table
                continue
            where = f"companies.{name}"
            table = resolve_files(table, _COMPANY_SECRETS, where)
            if isinstance(table.get("pbx_client"), dict):
                table["pbx_client"] = resolve_files(
                    table["pbx_client"], _PBX_SECRETS, f"{where}.pbx_client"
                )
            companies[name] = table
        return {**data, "companies": companies}


def _bound_to(path: Path) -> type[CompaniesFile]:
    """``CompaniesFile`` reading ``path``: the environment first, then the file."""

    class Bound(CompaniesFile):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
            return (init_settings, env_settings, dotenv_settings, toml)

    return Bound


def field_name(loc: tuple[int | str, ...]) -> str:
    """``companies.acme.pbx_client.user (CALLBRIDGE_COMPANIES__ACME__PBX_CLIENT__USER)``."""
    parts = [str(part) for part in loc]
    variable = ENV_PREFIX + "__".join(p for p in parts if not p.isdigit()).upper()
    return f"{'.'.join(parts)} ({variable})"


def explain_file(error: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    """One line per problem, each naming the company and the field."""
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{field_name((*prefix, *item['loc']))}: {message}")
    return "\n".join(lines)


def read_companies_file(path: Path) -> dict[str, CompanyConfig]:
    """The companies of ``path`` with the environment's overrides; ConfigurationError else."""
    if not path.is_file():
        raise ConfigurationError(f"CALLBRIDGE_COMPANIES_FILE: no such file: {path}")
    try:
        loaded = _bound_to(path)()
    except ValidationError as exc:
        raise ConfigurationError(f"invalid companies file {path}:\n{explain_file(exc)}") from None
    except ValueError as exc:  # a TOML syntax error, with its line and column
        raise ConfigurationError(f"invalid companies file {path}: {exc}") from None
    if not loaded.companies:
        raise ConfigurationError(f"companies file {path}: no [companies.NAME] table")
    bad = [name for name in loaded.companies if not NAME_PATTERN.match(name)]
    if bad:
        raise ConfigurationError(
            f"companies file {path}: company name(s) {', '.join(map(repr, bad))}: use lower-case "
            "letters, digits and '-' (the name goes into plugin names, metrics and keys)"
        )
    return loaded.companies


def company_pbx_settings(name: str, shared: PbxSettings, own: dict[str, Any]) -> PbxSettings:
    """The shared ``CALLBRIDGE_PBX__*`` settings, minus credentials and agents, plus ``own``."""
    unknown = sorted(set(own) - set(PbxSettings.model_fields))
    if unknown:
        where = f"companies.{name}.pbx_client"
        raise ConfigurationError(
            "invalid companies file:\n"
            + "\n".join(f"{where}.{key}: not a CALLBRIDGE_PBX__* field" for key in unknown)
        )
    base = shared.model_dump(exclude=set(OWN_PBX_FIELDS))
    try:
        return PbxSettings.model_validate({**base, **own})
    except ValidationError as exc:
        prefix = ("companies", name, "pbx_client")
        raise ConfigurationError("invalid companies file:\n" + explain_file(exc, prefix)) from None
