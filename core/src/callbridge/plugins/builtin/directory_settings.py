"""``CALLBRIDGE_DIRECTORY_*``: the directory plugin's settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import SettingsConfigDict

from ...settings_types import OptionalRegion
from ..base import PluginSettings

#: The directory's own record page (``register_routes``), relative so that it works behind
#: any host or proxy: the link a pop carries unless ``CALLBRIDGE_DIRECTORY_RECORD_URL`` says
#: otherwise.
DEFAULT_RECORD_URL = "/plugins/directory/contacts/{id}"


class DirectorySettings(PluginSettings):
    """``CALLBRIDGE_DIRECTORY_*`` (all optional: the directory works with none set)."""

    model_config = SettingsConfigDict(env_prefix="CALLBRIDGE_DIRECTORY_")

    #: The SQLite file (default ``<CALLBRIDGE_DATA_DIR>/directory.sqlite3``); an existing
    #: directory database can be pointed at directly.
    database: Path | None = None
    #: A CSV file imported at start-up (``name,company,numbers,owner_extension,email``).
    csv: Path | None = None
    #: Region for national numbers (default ``CALLBRIDGE_DEFAULT_REGION``).
    region: OptionalRegion = None
    #: Link to a contact in pops, ``{id}`` is replaced (default: the directory's own page
    #: when RECORD_PAGES is on, else no link).
    record_url: str | None = None
    #: Serve a page per contact at ``/plugins/directory/contacts/{id}``. Off by default: the
    #: page has no authentication, so only turn it on where the service is not reachable by
    #: strangers (the demo binds to 127.0.0.1 and turns it on).
    record_pages: bool = False
    #: ``false`` turns the directory off.
    enabled: bool | None = None

    @field_validator("record_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and "{id}" not in value:
            raise ValueError("must contain {id}, e.g. /directory/contacts/{id}")
        return value

    @field_validator("csv")
    @classmethod
    def _check_csv(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_file():
            raise ValueError(f"no such file: {value}")
        return value
