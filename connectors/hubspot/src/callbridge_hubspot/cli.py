"""``callbridge hubspot ...``: admin commands of the HubSpot connector.

``calling-settings`` prints the calling-extension settings HubSpot needs (name, the page's
URL, size, flags) and, with ``--apply``, registers them for the app through
``/crm/v3/extensions/calling/{appId}/settings`` (developer API key, not the private app
token: calling settings belong to the developer account's app).
"""

from __future__ import annotations

import json
from typing import Any

import click

from callbridge import ConfigurationError, PluginError, read_settings

from .settings import ENV_PREFIX, HubSpotSettings

WIDTH, HEIGHT = 400, 600


def extension_settings(settings: HubSpotSettings) -> dict[str, Any]:
    """The ``SettingsRequest`` body for this installation."""
    if not settings.public_url:
        raise ConfigurationError(
            f"{ENV_PREFIX}PUBLIC_URL is not set: the HTTPS address at which HubSpot's browser "
            "reaches callbridge (the page is served at <url>/plugins/hubspot/calling)"
        )
    return {
        "name": settings.extension_name,
        "url": f"{settings.public_url}/plugins/hubspot/calling",
        "width": WIDTH,
        "height": HEIGHT,
        "isReady": True,
        "supportsCustomObjects": True,
        "supportsInboundCalling": True,
        "usesCallingWindow": False,
        "usesRemote": False,
    }


@click.group()
def hubspot() -> None:
    """The HubSpot connector: calling extension set-up."""


@hubspot.command("calling-settings")
@click.option("--apply", is_flag=True, help="Register the settings with HubSpot for the app.")
def calling_settings(apply: bool) -> None:
    """Print (or with --apply register) the calling extension's settings."""
    settings = read_settings(HubSpotSettings, ENV_PREFIX)
    body = extension_settings(settings)
    if not apply:
        click.echo(json.dumps(body, indent=2))
        return
    if settings.app_id is None or settings.developer_api_key is None:
        raise ConfigurationError(
            f"--apply needs {ENV_PREFIX}APP_ID and {ENV_PREFIX}DEVELOPER_API_KEY "
            "(the app's id and the developer account's API key)"
        )
    from .api import HubSpotApi

    try:
        answer = HubSpotApi(settings).calling_settings(
            settings.app_id, settings.developer_api_key.get_secret_value(), body
        )
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(answer, indent=2, default=str))
