"""``callbridge --version`` and ``/healthz`` name the core and every installed connector.

A support request starts with "which versions?": both answers come from the installed
distributions' metadata (the workspace installs every package of this repository).
"""

from __future__ import annotations

from importlib.metadata import version

from click.testing import CliRunner

from callbridge.cli import main
from callbridge.versions import installed_versions

CONNECTORS = (
    "callbridge-salesforce",
    "callbridge-hubspot",
    "callbridge-zoho",
    "callbridge-example-missed-calls",
)


def test_installed_versions_name_core_first_then_every_plugin_distribution() -> None:
    versions = installed_versions()
    assert next(iter(versions)) == "callbridge"
    assert versions["callbridge"] == version("callbridge")
    for dist in CONNECTORS:
        assert versions[dist] == version(dist)
    # Only callbridge's own kind: a library with an unrelated entry point is not listed.
    assert "pytest" not in versions and "callbridge-workspace" not in versions


def test_version_option_lists_core_and_connectors() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"callbridge {version('callbridge')} (Python 3.")
    for dist in CONNECTORS:
        assert f"  {dist} {version(dist)}" in lines
