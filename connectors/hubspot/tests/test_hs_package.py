"""The distribution is installed and registered where the core looks for it."""

from __future__ import annotations

from importlib.metadata import entry_points


def test_entry_points_are_registered() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="callbridge")}
    commands = {ep.name: ep.value for ep in entry_points(group="callbridge.commands")}
    assert plugins["hubspot"] == "callbridge_hubspot.plugin:plugin"
    from callbridge_hubspot.plugin import HubSpotPlugin, plugin

    assert plugin is HubSpotPlugin
    assert commands["hubspot"] == "callbridge_hubspot.cli:hubspot"
