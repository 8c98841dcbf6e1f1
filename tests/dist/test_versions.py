"""Versions come from one place: VERSION, and every connector accepts the core it ships with."""

from __future__ import annotations

import tomllib
from importlib.metadata import requires, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "VERSION").read_text().strip()
PROJECTS = sorted(
    [ROOT / "core", *ROOT.glob("connectors/*/"), ROOT / "examples" / "missed-calls-webhook"]
)
PLUGINS = [p for p in PROJECTS if p.name != "core"]


def _project(path: Path) -> dict[str, object]:
    table: dict[str, object] = tomllib.loads((path / "pyproject.toml").read_text())["project"]
    return table


@pytest.mark.parametrize("path", PROJECTS, ids=lambda p: p.name)
def test_no_distribution_writes_its_own_version(path: Path) -> None:
    project = _project(path)
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    name = str(project["name"])
    assert version(name) == VERSION  # what the build made of VERSION


@pytest.mark.parametrize("path", PLUGINS, ids=lambda p: p.name)
def test_every_plugin_declares_a_core_range_that_holds_this_core(path: Path) -> None:
    name = str(_project(path)["name"])
    (core,) = [r for r in map(Requirement, requires(name) or []) if r.name == "callbridge"]
    assert core.specifier, f"{name} accepts any callbridge: give it a range"
    assert Version(VERSION) in core.specifier
    # An upper bound: the next minor release of the core may break plugins before 1.0.
    major, minor = Version(VERSION).release[:2]
    assert Version(f"{major}.{minor + 1}.0") not in core.specifier


def test_the_changelog_has_an_entry_for_this_version() -> None:
    """Bumping VERSION without saying what changed fails here (the upgrade docs rely on it)."""
    headings = [
        line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## ")
    ]
    assert headings, "CHANGELOG.md has no version entries"
    assert headings[0].split()[1] == VERSION, headings[0]
