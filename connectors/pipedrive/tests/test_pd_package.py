"""The distribution is installed and registered where the core looks for it."""

from __future__ import annotations

from importlib.metadata import entry_points, version


def test_the_entry_point_is_registered_with_the_shared_version() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="callbridge")}
    assert plugins["pipedrive"] == "callbridge_pipedrive.plugin:plugin"
    from callbridge_pipedrive import __version__
    from callbridge_pipedrive.plugin import PipedrivePlugin, plugin

    assert plugin is PipedrivePlugin
    assert __version__ == version("callbridge-pipedrive") == version("callbridge")
