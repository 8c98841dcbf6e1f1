"""The docs stay true: names, commands and generated text are checked against the code.

- every ``CALLBRIDGE_*`` name written in the docs, the READMEs and the examples is a variable
  some settings class reads (core, MySQL source, built-ins, every installed plugin) or a
  command-line option's ``envvar``, else it is in ``ALLOWED`` with the reason;
- every ``callbridge ...`` line in a shell block names a real command whose ``--help`` works,
  with options that command has;
- the generated pages (configuration reference, HTTP API, command samples) match the code.

New pages are found by globbing (``docs/**/*.md``), so a page added tomorrow is checked too.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from callbridge.cli import main
from callbridge.testing.variables import variable_names

ROOT = Path(__file__).resolve().parents[2]

#: Names the docs may write that no settings class reads, each with the reason.
ALLOWED: dict[str, str] = {
    "CALLBRIDGE_TEST_REQUIRE_SERVICES": (
        "read by callbridge.testing.services (tests needing MariaDB, Redis, Chromium), not serve"
    ),
    "CALLBRIDGE_TEST_BURST_CALLS": (
        "read by tests/service/test_engine_workers.py (the size of its burst), not serve"
    ),
}
#: Prefixes of illustrative plugins whose settings class is written out in the page itself.
ALLOWED_PREFIXES: dict[str, str] = {
    "CALLBRIDGE_ACME_": "docs/plugins.md's example plugin `acme`, its AcmeSettings in the page",
    "CALLBRIDGE_COMPANIES__": "a company's values (docs/companies.md): CompaniesFile's nested "
    "`companies` field, one name per company and field",
}
#: The container entrypoint reads CALLBRIDGE_<NAME>_FROM_FILE for any variable <NAME>.
FROM_FILE = "_FROM_FILE"

_NAME = re.compile(r"CALLBRIDGE_[A-Z0-9_]*(?:<NAME>[A-Z0-9_]*)?\*?")
_FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[A-Za-z]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
_SHELL = {"sh", "bash", "shell", "console"}


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cb_docs_hooks_true", ROOT / "docs/hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def doc_files() -> list[Path]:
    """README, every docs page, the connectors' and examples' text files, the scaffold."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    files += sorted((ROOT / "connectors").glob("*/README.md"))
    files += sorted((ROOT / "core/src/callbridge/templates/plugin").glob("*.tmpl"))
    for path in sorted((ROOT / "examples").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.append(path)
    return files


def _alias_names(cls: type[BaseModel]) -> Iterator[str]:
    """Every name a field accepts besides its first (``AliasChoices``)."""
    for info in cls.model_fields.values():
        for choice in getattr(info.validation_alias, "choices", None) or ():
            if isinstance(choice, str):
                yield choice.upper()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            yield from _alias_names(info.annotation)


def _click_envvars(command: click.Command) -> Iterator[str]:
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        if isinstance(envvar, str):
            yield envvar
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                yield from _click_envvars(sub)


@pytest.fixture(scope="module")
def known_names() -> set[str]:
    names: set[str] = set()
    for _title, cls, _intro in _hooks().settings_classes():
        names |= variable_names(cls) | set(_alias_names(cls))
    names |= set(_click_envvars(main))
    # The scaffold's own settings, as `callbridge new-plugin acme-crm` writes them.
    names |= {"CALLBRIDGE_ACME_CRM_URL", "CALLBRIDGE_ACME_CRM_TOKEN"}
    return names


def _unknown(name: str, known: set[str]) -> bool:
    if name in ALLOWED or any(name.startswith(p) for p in ALLOWED_PREFIXES):
        return False
    if "<NAME>" in name:
        return False  # the entrypoint's pattern itself (CALLBRIDGE_<NAME>_FROM_FILE)
    if name.endswith(FROM_FILE):
        name = name[: -len(FROM_FILE)]
    if name.endswith(("*", "_")):  # a prefix: CALLBRIDGE_SALESFORCE_*, `CALLBRIDGE_WEBHOOK_`
        prefix = name.rstrip("*")
        return not any(k.startswith(prefix) for k in known)
    return name not in known


def test_every_variable_named_in_the_docs_is_read_by_the_code(known_names: set[str]) -> None:
    unknown: dict[str, list[str]] = {}
    for path in doc_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in _NAME.finditer(text):
            name = match.group(0)
            if name != "CALLBRIDGE_" and _unknown(name, known_names):
                unknown.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert unknown == {}, "named in the docs but read by no settings class (or add to ALLOWED)"


def test_the_check_catches_a_misspelt_name(known_names: set[str]) -> None:
    assert _unknown("CALLBRIDGE_PBX__SOAP_URL", known_names) is False
    assert _unknown("CALLBRIDGE_CONSOLE__ENABLED", known_names) is False  # an alias
    assert _unknown("CALLBRIDGE_CONSOLE__ENABLD", known_names) is True
    assert _unknown("CALLBRIDGE_SALESFORCE_*", known_names) is False
    assert _unknown("CALLBRIDGE_SALESFROCE_*", known_names) is True
    assert _unknown("CALLBRIDGE_PBX__PASSWORD_FROM_FILE", known_names) is False


def test_every_setting_is_in_the_checked_in_reference() -> None:
    from callbridge.testing.variables import variables

    text = (ROOT / "docs/configuration.md").read_text(encoding="utf-8")
    missing = [
        var.name
        for _title, cls, _intro in _hooks().settings_classes()
        for var in variables(cls)
        if f"`{var.name}`" not in text
    ]
    assert missing == []


def test_generated_pages_match_the_code() -> None:
    """docs/configuration.md, docs/http-api.md and the command samples are current."""
    stale = _hooks().stale_pages(ROOT / "docs")
    assert stale == [], f"{stale}: run `make docs-gen`"


def test_a_stale_reference_is_noticed(tmp_path: Path) -> None:
    hooks = _hooks()
    page = (ROOT / "docs/configuration.md").read_text(encoding="utf-8")
    (tmp_path / "configuration.md").write_text(page.replace("CALLBRIDGE_DATA_DIR", "X"))
    (tmp_path / "http-api.md").write_text((ROOT / "docs/http-api.md").read_text())
    assert hooks.stale_pages(tmp_path) == ["docs/configuration.md"]
    hooks.stale_pages(tmp_path, write=True)
    assert (tmp_path / "configuration.md").read_text() == page


# --- command lines ----------------------------------------------------------------------------


def command_lines() -> Iterator[tuple[str, str]]:
    """(file, line) of every ``callbridge ...`` command in a shell block of the docs."""
    for path in doc_files():
        if path.suffix not in {".md", ".tmpl"}:
            continue
        for block in _FENCE.finditer(path.read_text(encoding="utf-8")):
            shell = block.group("lang") in _SHELL
            if not shell and block.group("lang") not in {"", "text"}:
                continue
            body = block.group("body").replace("\\\n", " ")
            for raw in body.splitlines():
                line = raw.strip()
                if not shell and not line.startswith("$ "):
                    continue  # a prompt marks a command among output
                line = line.removeprefix("$ ")
                try:
                    words = shlex.split(line, comments=True)
                except ValueError:  # an unbalanced quote: not a command line of ours
                    continue
                while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
                    words.pop(0)  # NAME=value assignments before the command
                if words and words[0] in {"callbridge", ".venv/bin/callbridge"}:
                    yield str(path.relative_to(ROOT)), " ".join(words)


_INLINE = re.compile(r"(?<!`)`((?:\.venv/bin/)?callbridge [^`\n]+)`(?!`)")


def inline_commands() -> Iterator[tuple[str, str]]:
    """(file, command) of every ```callbridge ...``` code span in the prose."""
    for path in doc_files():
        if path.suffix not in {".md", ".tmpl"}:
            continue
        prose = _FENCE.sub("", path.read_text(encoding="utf-8"))
        for match in _INLINE.finditer(prose):
            span = match.group(1)
            if span.endswith(":") or ": " in span or "…" in span:
                continue  # a message that starts with the word (`callbridge signature:`)
            yield str(path.relative_to(ROOT)), span


def _resolve(words: list[str]) -> tuple[list[str], click.Command, list[str]]:
    """The subcommand path a command line names, its command, and the words after it."""
    command: click.Command = main
    path: list[str] = []
    rest = words[1:]
    while isinstance(command, click.Group) and rest and not rest[0].startswith(("-", "<", "...")):
        sub = command.get_command(click.Context(command), rest[0])
        if sub is None:
            raise AssertionError(f"no command {' '.join(['callbridge', *path, rest[0]])!r}")
        command, path, rest = sub, [*path, rest[0]], rest[1:]
    return path, command, rest


def _options(command: click.Command) -> set[str]:
    """The options of ``command``; of a group: its own and any of its subcommands' (for
    ``callbridge pbx <command> --dry-run``, where the page leaves the subcommand open)."""
    opts = {"--help", "-h"}
    for param in command.params:
        opts.update(param.opts)
        opts.update(param.secondary_opts)
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                opts |= _options(sub)
    return opts


LINES = sorted(set(command_lines()) | set(inline_commands()))


def test_the_docs_have_command_lines_to_check() -> None:
    files = {file for file, _line in LINES}
    assert "README.md" in files and "docs/quickstart.md" in files
    assert len(LINES) > 30


@pytest.mark.parametrize(("file", "line"), LINES, ids=[f"{f}: {line}" for f, line in LINES])
def test_a_command_line_of_the_docs_parses(file: str, line: str) -> None:
    words = [w for w in shlex.split(line) if w not in {"|", "&&", ";"}]
    for stop in ("|", "&&", ";", ">", "2>&1"):
        if stop in words:
            words = words[: words.index(stop)]
    path, command, rest = _resolve(words)
    done = CliRunner().invoke(main, [*path, "--help"])
    assert done.exit_code == 0, done.output
    unknown = [
        word.split("=", 1)[0]
        for word in rest
        if word.startswith("-") and word != "-" and word.split("=", 1)[0] not in _options(command)
    ]
    assert unknown == [], f"{file}: {line!r} uses options `callbridge {' '.join(path)}` lacks"


def test_a_wrong_command_or_option_fails_the_check() -> None:
    with pytest.raises(AssertionError):
        _resolve(["callbridge", "deliveriez"])
    _path, command, _rest = _resolve(["callbridge", "demo", "--once", "--nope"])
    assert "--once" in _options(command) and "--nope" not in _options(command)


# --- the README and the quickstart ------------------------------------------------------------


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_readme_set_up_is_two_commands() -> None:
    section = _section((ROOT / "README.md").read_text(encoding="utf-8"), "Set-up")
    blocks = [b.group("body") for b in _FENCE.finditer(section)]
    assert len(blocks) == 1
    commands = [line.split("#")[0].strip() for line in blocks[0].splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]


def test_bare_callbridge_only_after_saying_how_it_gets_on_path() -> None:
    """A page that types a bare ``callbridge`` first says how (activate .venv / make shell)."""
    for path in (ROOT / "README.md", ROOT / "docs/quickstart.md"):
        text = path.read_text(encoding="utf-8")
        bare = [
            block.start("body") + line.start()
            for block in _FENCE.finditer(text)
            if block.group("lang") in _SHELL
            for line in re.finditer(r"^\s*(\$ )?callbridge ", block.group("body"), re.M)
        ]
        if not bare:
            continue
        activation = [text.find(s) for s in (". .venv/bin/activate", "make shell") if s in text]
        assert activation and min(activation) < bare[0], path.name


# --- the project's facts, one value each ------------------------------------------------------

PROJECT_URL = "https://github.com/callbridge/callbridge"


def test_one_project_url_license_and_python_everywhere() -> None:
    import tomllib

    pyprojects = [ROOT / "core/pyproject.toml", *sorted(ROOT.glob("connectors/*/pyproject.toml"))]
    for path in pyprojects:
        project = tomllib.loads(path.read_text())["project"]
        assert project["urls"]["Homepage"] == PROJECT_URL, path
        assert project["license"] == "MIT", path
        assert project["requires-python"] == ">=3.11", path
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    readme = (ROOT / "README.md").read_text()
    assert PROJECT_URL in readme and "3.11" in readme and "(LICENSE)" in readme
    template = ROOT / "core/src/callbridge/templates/plugin/README.md.tmpl"
    linked = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", template.read_text()))
    assert linked == {PROJECT_URL}


def test_variables_have_types_and_defaults_only_in_the_generated_reference() -> None:
    """Other pages may explain a variable, but its default lives in one place (it drifts)."""
    header = re.compile(r"^\| *variables? *\|[^\n]*\bdefault\b", re.I | re.M)
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    offending = [
        str(p.relative_to(ROOT))
        for p in pages
        if p.name != "configuration.md" and header.search(p.read_text(encoding="utf-8"))
    ]
    assert offending == [], "link to docs/configuration.md instead of a table of defaults"


def test_generated_pages_use_markdown_code_not_rest() -> None:
    for page in ("configuration.md", "http-api.md"):
        assert "``" not in (ROOT / "docs" / page).read_text(encoding="utf-8"), page
