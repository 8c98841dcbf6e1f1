"""``callbridge new-plugin NAME``: a plugin package that installs and passes its tests as made.

The package has the ``callbridge`` entry point (hatchling), a plugin module with a commented
implementation of each main hook, a settings class with its own prefix, tests on callbridge's
test kit (the standard ``ConnectorTests`` and whole-call scenarios against a local fake CRM),
and a README. Nothing is written when the name is bad or the target folder is not empty.

``--install`` then installs it (editable, with its test extras) into the environment that
runs callbridge. With uv, not pip: a virtual environment made by uv (the workspace's
``.venv``) has no pip, and ``uv pip install`` works in both kinds.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
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


def find_uv() -> str | None:
    """uv on PATH, next to this interpreter, or where the workspace bootstrap puts it
    (``.venv-tools/bin/uv`` beside ``.venv``, when uv was not on PATH; see the Makefile)."""
    here = Path(sys.executable).parent
    tools = Path(sys.prefix).parent / ".venv-tools" / "bin"
    return shutil.which("uv") or shutil.which("uv", path=f"{here}{os.pathsep}{tools}")


def install_command(root: Path) -> list[str]:
    """The command installing ``root`` editable with its ``test`` extras into the environment
    of this interpreter: ``uv pip install --python`` when uv is found (it needs no pip in the
    environment), else this interpreter's pip. Raises click.ClickException with the way out
    when there is neither."""
    target = f"{root.resolve()}[test]"
    uv = find_uv()
    if uv is not None:
        return [uv, "pip", "install", "--python", sys.executable, "-e", target]
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip", "install", "-e", target]
    raise click.ClickException(
        f"neither uv nor pip is available to install into {sys.prefix}: "
        f"install uv (python3 -m pip install --user uv) and run, in {root}: "
        "uv pip install -e '.[test]'"
    )


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
@click.option(
    "--install",
    is_flag=True,
    help="Then install it (editable, with its test extras) where callbridge runs.",
)
def new_plugin(name: str, directory: Path, install: bool) -> None:
    """Create a plugin package NAME (e.g. acme-crm) with hooks, settings, tests, README."""
    try:
        root = create(name, directory)
    except (ValueError, FileExistsError) as exc:
        raise click.UsageError(str(exc)) from None
    names = Names.of(name)
    click.echo(f"Created {root}")
    click.echo(f"  plugin:   src/{names.package}/plugin.py ({names.class_name})")
    click.echo(f"  settings: {names.prefix}URL, {names.prefix}TOKEN")
    if install:
        command = install_command(root)
        click.echo("Installing: " + " ".join(command))
        done = subprocess.run(command, check=False)  # noqa: S603 (our own argument list)
        if done.returncode != 0:
            raise click.ClickException(f"the install failed (exit {done.returncode})")
        click.echo(f"Installed {names.dist} into {sys.prefix}")
        click.echo("Next:")
        click.echo(f"  cd {root} && {Path(sys.executable).parent / 'python'} -m pytest")
        return
    click.echo("Next (or run new-plugin again with --install, which does it for you):")
    click.echo(f"  cd {root} && uv pip install -e '.[test]' && pytest")
