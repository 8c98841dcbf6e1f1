"""``callbridge new-plugin NAME``: a plugin package that installs and passes its tests as made.

The package has the ``callbridge`` entry point (hatchling), a plugin module with a commented
implementation of each main hook, a settings class with its own prefix, tests on callbridge's
test kit (the standard ``ConnectorTests`` and whole-call scenarios against a local fake CRM),
and a README. Nothing is written when the name is bad or the target folder is not empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

#: template file -> path in the generated package ({package} is replaced).
_FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "init.py.tmpl": "src/{package}/__init__.py",
    "plugin.py.tmpl": "src/{package}/plugin.py",
    "fake_crm.py.tmpl": "tests/fake_crm.py",
    "test_contract.py.tmpl": "tests/test_contract.py",
    "test_calls.py.tmpl": "tests/test_calls.py",
}


@dataclass(frozen=True)
class Names:
    """Every name derived from the plugin name, so they stay consistent."""

    name: str
    dist: str
    package: str
    class_name: str
    settings_class: str
    prefix: str

    @classmethod
    def of(cls, raw: str) -> Names:
        """Derive the names; raise ValueError with the rule when ``raw`` is unusable."""
        name = raw.strip().lower().removeprefix("callbridge-")
        if not _NAME.fullmatch(name) or len(name) > 40:
            raise ValueError(
                f"{raw!r} is not a plugin name: use lower-case letters, digits and dashes, "
                "starting with a letter (e.g. acme-crm), at most 40 characters"
            )
        words = name.split("-")
        camel = "".join(word.capitalize() for word in words)
        return cls(
            name=name,
            dist=f"callbridge-{name}",
            package="callbridge_" + "_".join(words),
            class_name=f"{camel}Plugin",
            settings_class=f"{camel}Settings",
            prefix="CALLBRIDGE_" + "_".join(words).upper() + "_",
        )

    def fill(self, text: str) -> str:
        """Replace the ``{{...}}`` placeholders of a template."""
        for key, value in vars(self).items():
            text = text.replace("{{" + key + "}}", value)
        return text


def render(names: Names) -> dict[str, str]:
    """Relative path -> content of every file of the package."""
    folder = resources.files("callbridge.templates") / "plugin"
    result = {}
    for template, target in _FILES.items():
        text = (folder / template).read_text(encoding="utf-8")
        result[target.format(package=names.package)] = names.fill(text)
    return result


def create(raw_name: str, parent: Path) -> Path:
    """Write the package into ``parent/callbridge-<name>``; return that folder.

    Raises ValueError (bad name) or FileExistsError (a non-empty folder is in the way)
    before writing anything.
    """
    names = Names.of(raw_name)
    root = parent / names.dist
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} already exists and is not empty")
    files = render(names)
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    (root / "src" / names.package / "py.typed").write_text("")
    return root


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder in which the package folder callbridge-NAME is created.",
)
def new_plugin(name: str, directory: Path) -> None:
    """Create a plugin package NAME (e.g. acme-crm) with hooks, settings, tests, README."""
    try:
        root = create(name, directory)
    except (ValueError, FileExistsError) as exc:
        raise click.UsageError(str(exc)) from None
    names = Names.of(name)
    click.echo(f"Created {root}")
    click.echo(f"  plugin:   src/{names.package}/plugin.py ({names.class_name})")
    click.echo(f"  settings: {names.prefix}URL, {names.prefix}TOKEN")
    click.echo("Next:")
    click.echo(f"  cd {root} && pip install -e '.[test]' && pytest")
