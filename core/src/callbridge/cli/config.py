"""``callbridge config``: the effective configuration, as the service would read it.

Shows every core setting under its environment variable name, after defaults, ``.env`` and
the environment are applied, so "why does it not pick up my setting" has a quick answer.
Secrets (``SecretStr``) print as ``**********``, and so does a password written into a
plain-string URL setting (``CALLBRIDGE_PBX__SOAP_URL=https://user:password@pbx/soap``) or in
``CALLBRIDGE_JOURNAL`` (shown, since which backend runs matters, with only its password masked).
An invalid variable is reported by name with exit status 2 (by the CLI root).

With ``CALLBRIDGE_COMPANIES_FILE`` the file is read and validated as the service would
(environment overrides and ``*_file`` secrets applied); each company's values are shown as
``CALLBRIDGE_COMPANIES__<NAME>__...``, the variables that would override them, and an error
names the company and the field. Plugin settings that look secret (``token``, ``password``,
``secret``, ``key`` in the name) are masked; each plugin validates its own table when it
loads (``callbridge plugins`` names the field).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from ..companies.model import read_companies_file
from ..settings import ENV_PREFIX, load_settings

_UNSET = "(not set)"
_MASK = "**********"
#: ``scheme://user:password@`` -> the password part (up to the last ``@``, as urlsplit reads it).
_SECRET_NAME = re.compile(r"token|password|secret|key|credential", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*):[^/\s]*@")
#: ``?password=...`` or ``&sentinel_password=...`` in a URL's query (redis-py reads the
#: first, a ``redis+sentinel://`` journal URL the second).
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&][A-Za-z0-9_]*password=)[^&#\s]*", re.IGNORECASE)


def _mask_urls(value: Any) -> Any:
    """``value`` with the password of every ``scheme://user:password@host`` masked, and
    every ``password`` parameter of a URL's query."""
    if isinstance(value, str):
        value = _URL_PASSWORD.sub(rf"\g<head>:{_MASK}@", value)
        return _QUERY_PASSWORD.sub(rf"\g<head>{_MASK}", value)
    if isinstance(value, dict):
        return {key: _mask_urls(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_urls(item) for item in value]
    return value


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """``{"pbx": {"soap_url": x}}`` -> ``{"CALLBRIDGE_PBX__SOAP_URL": x}``."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}__{key.upper()}" if prefix != ENV_PREFIX else f"{prefix}{key.upper()}"
            _flatten(name, item, out)
        return
    out[prefix] = value


def _mask_plugin_secrets(table: dict[str, Any]) -> dict[str, Any]:
    """A plugin table with values of secret-looking keys masked (paths of ``*_file`` kept)."""
    return {
        key: (
            _mask_plugin_secrets(value)
            if isinstance(value, dict)
            else _MASK
            if _SECRET_NAME.search(key) and not key.endswith("_file")
            else value
        )
        for key, value in table.items()
    }


def _companies(path: Path) -> dict[str, Any]:
    """Every company of the file, validated (ConfigurationError naming company and field)."""
    from ..companies.registry import load_companies

    settings = load_settings()
    load_companies(settings)  # every check the service makes at start-up
    shown = {}
    for name, config in read_companies_file(path.expanduser()).items():
        dumped = _mask_urls(config.model_dump(mode="json"))
        dumped["pbx_client"] = _mask_plugin_secrets(dumped["pbx_client"])
        dumped["plugins"] = _mask_plugin_secrets(dumped["plugins"])
        shown[name] = dumped
    return shown


def _show(value: Any) -> str:
    if value is None:
        return _UNSET
    if isinstance(value, list):
        return ",".join(str(item) for item in value) if value else "(empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the settings as nested JSON.")
def config(as_json: bool) -> None:
    """Print the effective configuration (secrets masked)."""
    settings = load_settings()
    data = _mask_urls(settings.model_dump(mode="json"))
    # The journal is a SecretStr only for the password a redis:// URL may carry: show the
    # backend (``sqlite``, ``redis://host/0``) with just that password masked.
    data["journal"] = _mask_urls(settings.journal.get_secret_value())
    if settings.companies_file is not None:
        data["companies"] = _companies(settings.companies_file)
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    flat: dict[str, Any] = {}
    _flatten(ENV_PREFIX, data, flat)
    width = max(len(name) for name in flat)
    for name in sorted(flat):
        click.echo(f"{name.ljust(width)}  {_show(flat[name])}")
