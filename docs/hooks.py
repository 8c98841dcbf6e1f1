"""MkDocs hooks: a nav that tolerates missing pages, and two pages generated from the code.

- ``on_config``: nav entries whose Markdown file does not exist (yet) are dropped, so the
  site builds strictly while pages are still being written.
- generated pages: docs/configuration.md holds the reference of every environment variable,
  generated from the settings classes (core, MySQL source, built-in plugins, and every
  installed plugin's ``settings_class``); docs/http-api.md the HTTP API, generated from the
  application's OpenAPI document. Both are written into the files between begin/end markers
  (``make docs-gen`` runs this file), checked in so that they read on GitHub too, and
  ``on_pre_build`` fails the build when they no longer match the code.
- ``on_page_markdown``: links to pages that do not exist become plain text.
"""

from __future__ import annotations

import importlib
import re
import tempfile
from pathlib import Path
from typing import Any

#: Generated pages: file under docs/ -> the name in its begin/end markers.
GENERATED = {"configuration.md": "configuration", "http-api.md": "http-api"}

#: (title, "module:Class", intro) of the core's settings classes, first in the reference;
#: every installed plugin's ``settings_class`` (entry points of the ``callbridge`` group:
#: connectors, examples, anything installed) follows, found at generation time.
CORE_SETTINGS: list[tuple[str, str, str]] = [
    ("Core", "callbridge.settings:Settings", "The service itself (`callbridge serve`)."),
    (
        "MySQL source",
        "callbridge.mysql.settings:MysqlSourceSettings",
        "Tuning of the MySQL outbox source, used when `CALLBRIDGE_SOURCE` is a `mysql://` URL.",
    ),
    (
        "Built-in plugin: console",
        "callbridge.plugins.builtin.console:ConsoleSettings",
        "Prints pops and calls when nothing else logs them.",
    ),
    (
        "Built-in plugin: directory",
        "callbridge.plugins.builtin.directory:DirectorySettings",
        "A local contact directory (SQLite, CSV import).",
    ),
    (
        "Built-in plugin: webhook",
        "callbridge.plugins.builtin.webhook:WebhookSettings",
        "Signed JSON POSTs of pops and finished calls.",
    ),
]

_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s]+)\)")


# --- nav --------------------------------------------------------------------------------------


def _prune(items: list[Any], docs_dir: Path) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            entry: dict[str, Any] = {}
            for title, value in item.items():
                if isinstance(value, list):
                    inner = _prune(value, docs_dir)
                    if inner:
                        entry[title] = inner
                elif _exists(value, docs_dir):
                    entry[title] = value
            if entry:
                kept.append(entry)
        elif _exists(item, docs_dir):
            kept.append(item)
    return kept


def _exists(target: object, docs_dir: Path) -> bool:
    if not isinstance(target, str):
        return True
    if "://" in target or not target.endswith(".md"):
        return True
    return (docs_dir / target).is_file()


def on_config(config: Any) -> Any:
    """Drop nav entries whose page is missing."""
    if config.nav:
        config.nav = _prune(config.nav, Path(config.docs_dir))
    return config


# --- links ------------------------------------------------------------------------------------


def unlink_missing(markdown: str, page_path: str, docs_dir: Path) -> str:
    """``[text](missing.md)`` -> ``text``, for relative links to files that do not exist."""
    base = (docs_dir / page_path).parent

    def replace(match: re.Match[str]) -> str:
        target = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
            return match.group(0)
        path = target.split("#", 1)[0]
        if not path:
            return match.group(0)
        resolved = (base / path).resolve()
        inside = docs_dir.resolve() in resolved.parents or resolved == docs_dir.resolve()
        if inside and resolved.exists():
            return match.group(0)
        return match.group(1)

    return _LINK.sub(replace, markdown)


# --- configuration reference ------------------------------------------------------------------


def _cell(text: str) -> str:
    """Table-safe text: reST ``code`` as Markdown `code`, pipes outside code escaped, one line."""
    text = re.sub(r"``([^`]+)``", r"`\1`", " ".join(text.split()))
    parts = re.split(r"(`+[^`]*`+)", text)
    return "".join(p if p.startswith("`") else p.replace("|", "\\|") for p in parts)


def _code(text: str) -> str:
    """A default as a code span, unless it is prose that already holds code (``DATA_DIR``)."""
    text = _cell(text)
    return text if "`" in text else f"`{text}`"


def _import(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def settings_classes() -> list[tuple[str, type[Any], str]]:
    """(title, class, intro) of the core's settings, then of every installed plugin's."""
    from importlib.metadata import entry_points

    out: list[tuple[str, type[Any], str]] = [
        (title, _import(target), intro) for title, target, intro in CORE_SETTINGS
    ]
    for ep in sorted(entry_points(group="callbridge"), key=lambda e: e.name):
        # A plugin that fails to import fails the generation: the reference must not lose it.
        cls = getattr(ep.load(), "settings_class", None)
        if cls is None:
            continue
        dist = ep.dist.name if ep.dist is not None else ep.value
        doc = (cls.__doc__ or "").strip().split("\n\n")[0]
        intro = " ".join(doc.split()) + " " if doc else ""
        out.append((f"Plugin: {ep.name}", cls, f"{intro}The `{dist}` distribution."))
    return out


def configuration_reference() -> str:
    """Markdown tables of every variable of every settings class that is installed.

    Fields that share one ``#:`` comment (a group, such as the four delivery retry
    settings) share one row: their names, types and defaults one per line, the sentence once.
    """
    from callbridge.testing.variables import env_prefix, variables

    out: list[str] = []
    for title, cls, intro in settings_classes():
        prefix = env_prefix(cls)
        out += [f"## {title}", "", f"{_cell(intro)} Prefix: `{prefix}`.", ""]
        out += ["| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
        rows: list[tuple[list[str], list[str], list[str], str]] = []
        for var in variables(cls):
            default = "**required**" if var.required else _code(var.default)
            kind = f"`{var.type}`" + (" (secret)" if var.secret else "")
            if rows and var.description and rows[-1][3] == var.description:
                rows[-1][0].append(f"`{var.name}`")
                rows[-1][1].append(_cell(kind))
                rows[-1][2].append(default)
                continue
            rows.append(([f"`{var.name}`"], [_cell(kind)], [default], var.description))
        for names, kinds, defaults, description in rows:
            cells = ["<br>".join(names), "<br>".join(kinds), "<br>".join(defaults)]
            out.append(f"| {' | '.join(cells)} | {_cell(description)} |")
        out.append("")
    return "\n".join(out)


# --- HTTP API ---------------------------------------------------------------------------------


def openapi_document() -> dict[str, Any]:
    """The application's OpenAPI document, from an app on a throwaway journal."""
    from pydantic import SecretStr

    from callbridge.journal.sqlite import SqliteJournal
    from callbridge.server.app import create_app
    from callbridge.server.services import Services
    from callbridge.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), ingress_token=SecretStr("docs-" + "x" * 32))
        journal = SqliteJournal(Path(tmp) / "journal.sqlite3")
        try:
            document: dict[str, Any] = create_app(Services(settings, journal)).openapi()
        finally:
            journal.close()
    return document


def _schema_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return f"[`{name}`](#{name.lower()})"
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return f"array of {_schema_name(schema['items'])}"
    if "anyOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["anyOf"])
    return f"`{schema.get('type', 'object')}`"


def http_api_reference(document: dict[str, Any] | None = None) -> str:
    """Markdown for every operation and schema of the OpenAPI document."""
    doc = document or openapi_document()
    out: list[str] = []
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in doc.get("paths", {}).items():
        for method, op in methods.items():
            tag = (op.get("tags") or ["Other"])[0]
            by_tag.setdefault(tag, []).append((method.upper(), path, op))
    for tag, ops in by_tag.items():
        out += [f"## {tag}", ""]
        for method, path, op in ops:
            out += [f"### `{method} {path}`", ""]
            if op.get("summary"):
                out += [f"**{op['summary']}**", ""]
            if op.get("description"):
                out += [re.sub(r"``([^`]+)``", r"`\1`", op["description"].strip()), ""]
            params = op.get("parameters", [])
            if params:
                out += ["| Parameter | In | Required | Type | Description |"]
                out += ["| --- | --- | --- | --- | --- |"]
                for p in params:
                    kind = _schema_name(p.get("schema", {}))
                    desc = _cell(p.get("description", ""))
                    req = "yes" if p.get("required") else "no"
                    out.append(f"| `{p['name']}` | {p['in']} | {req} | {kind} | {desc} |")
                out.append("")
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                out += [f"Request body (`{media}`): {_schema_name(content.get('schema', {}))}", ""]
            responses = op.get("responses", {})
            if responses:
                out += ["| Status | Meaning |", "| --- | --- |"]
                for status, resp in responses.items():
                    out.append(f"| {status} | {_cell(resp.get('description', ''))} |")
                out.append("")
    schemas = doc.get("components", {}).get("schemas", {})
    if schemas:
        out += ["## Schemas", ""]
        for name, schema in sorted(schemas.items()):
            out += [f"### {name}", ""]
            if schema.get("description"):
                out += [_cell(schema["description"]), ""]
            props = schema.get("properties", {})
            required = set(schema.get("required", []))
            if props:
                out += ["| Field | Type | Required | Description |", "| --- | --- | --- | --- |"]
                for field, sub in props.items():
                    req = "yes" if field in required else "no"
                    desc = _cell(sub.get("description", ""))
                    out.append(f"| `{field}` | {_schema_name(sub)} | {req} | {desc} |")
                out.append("")
    return "\n".join(out)


# --- generated pages -------------------------------------------------------------------------


def _markers(name: str) -> tuple[str, str]:
    return (
        f"<!-- callbridge:{name} begin: generated by `make docs-gen`, do not edit -->",
        f"<!-- callbridge:{name} end -->",
    )


def generated_text(name: str) -> str:
    """What belongs between the markers of the generated page ``name``."""
    return configuration_reference() if name == "configuration" else http_api_reference()


def regenerate(text: str, name: str, content: str) -> str:
    """``text`` with the section between ``name``'s markers replaced by ``content``."""
    begin, end = _markers(name)
    if begin not in text or end not in text:
        raise ValueError(f"the page has no {begin!r} ... {end!r} markers")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n\n{content.strip()}\n\n{end}{tail}"


_SAMPLE = re.compile(
    r"<!-- callbridge:sample (?P<command>(?:[A-Z_]+=\S+ )*callbridge [^>]*?) begin\b"
)


def command_sample(command: str) -> str:
    """``command`` run for real, as on a fresh install: an empty temporary home and working
    directory, no ``CALLBRIDGE_*`` variable but those the command line sets, 160 columns.
    Shown as a ``text`` block."""
    import os
    import shlex
    import subprocess
    import sys

    argv = shlex.split(command)
    assigned = {}
    while "=" in argv[0]:  # leading NAME=value assignments, as a shell reads them
        name, _, value = argv.pop(0).partition("=")
        assigned[name] = value
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "COLUMNS": "160", "TERM": "dumb"}
        done = subprocess.run(  # noqa: S603 (a command line written in our own docs)
            [sys.executable, "-m", "callbridge.cli", *argv[1:]],
            cwd=tmp,
            env={**env, "NO_COLOR": "1", **assigned},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{command!r} exited {done.returncode}: {done.stderr.strip()}")
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    return "\n".join(["```text", f"$ {command}", *lines, "```"])


def stale_pages(docs_dir: Path, write: bool = False) -> list[str]:
    """Generated pages and samples whose checked-in text differs from the code (rewritten
    when ``write``): the two references, and every ``callbridge:sample <command>`` section."""
    stale = []
    for path in sorted(docs_dir.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        fresh = text
        name = GENERATED.get(path.relative_to(docs_dir).as_posix())
        if name is not None:
            fresh = regenerate(fresh, name, generated_text(name))
        for command in dict.fromkeys(m.group("command") for m in _SAMPLE.finditer(text)):
            fresh = regenerate(fresh, f"sample {command}", command_sample(command))
        if fresh != text:
            stale.append(f"docs/{path.relative_to(docs_dir).as_posix()}")
            if write:
                path.write_text(fresh, encoding="utf-8")
    return stale


# --- the hooks --------------------------------------------------------------------------------


def on_pre_build(config: Any) -> None:
    """Fail the build when a generated page no longer matches the code."""
    from mkdocs.exceptions import PluginError

    stale = stale_pages(Path(config.docs_dir))
    if stale:
        raise PluginError(f"{', '.join(stale)} out of date with the code: run `make docs-gen`")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Unlink pages that do not exist."""
    return unlink_missing(markdown, page.file.src_path, Path(config.docs_dir))


if __name__ == "__main__":
    # `make docs-gen`: rewrite the generated pages; `--check`: exit 1 when one is stale.
    import sys

    check = "--check" in sys.argv[1:]
    changed = stale_pages(Path(__file__).resolve().parent, write=not check)
    for page in changed:
        print(f"{page}: {'out of date' if check else 'regenerated'}")
    sys.exit(1 if check and changed else 0)
