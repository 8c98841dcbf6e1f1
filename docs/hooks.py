"""MkDocs hooks: a nav that tolerates missing pages, and two pages generated from the code.

- ``on_config``: nav entries whose Markdown file does not exist (yet) are dropped, so the
  site builds strictly while pages are still being written.
- ``on_page_markdown``: ``<!-- callbridge:configuration -->`` becomes the reference of every
  environment variable, generated from the settings classes (core, MySQL source, built-in
  plugins, and the connectors that are installed); ``<!-- callbridge:http-api -->`` becomes
  the HTTP API, generated from the application's OpenAPI document. Neither can drift from
  the code. Links to pages that do not exist become plain text.
"""

from __future__ import annotations

import importlib
import re
import tempfile
from pathlib import Path
from typing import Any

CONFIG_MARKER = "<!-- callbridge:configuration -->"
API_MARKER = "<!-- callbridge:http-api -->"

#: (title, "module:Class", intro) of every settings class in the reference, in order.
SETTINGS_CLASSES: list[tuple[str, str, str]] = [
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
    (
        "Connector: Salesforce",
        "callbridge_salesforce.settings:SalesforceSettings",
        "The `callbridge-salesforce` distribution.",
    ),
    (
        "Connector: HubSpot",
        "callbridge_hubspot.settings:HubSpotSettings",
        "The `callbridge-hubspot` distribution.",
    ),
    (
        "Connector: Zoho CRM",
        "callbridge_zoho.settings:ZohoSettings",
        "The `callbridge-zoho` distribution.",
    ),
    (
        "Example plugin: missed calls",
        "callbridge_missed_calls.plugin:MissedCallsSettings",
        "The example package in `examples/missed-calls-webhook`.",
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
    """Table-safe text: pipes outside code spans escaped, newlines folded."""
    parts = re.split(r"(`+[^`]*`+)", " ".join(text.split()))
    return "".join(p if p.startswith("`") else p.replace("|", "\\|") for p in parts)


def _import(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def configuration_reference() -> str:
    """Markdown tables of every variable of every importable settings class."""
    from callbridge.testing.variables import env_prefix, variables

    out: list[str] = []
    for title, target, intro in SETTINGS_CLASSES:
        try:
            cls = _import(target)
        except ImportError:
            continue  # a connector that is not installed
        prefix = env_prefix(cls)
        out += [f"## {title}", "", f"{intro} Prefix: `{prefix}`.", ""]
        out += ["| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
        for var in variables(cls):
            default = "**required**" if var.required else f"`{var.default}`"
            kind = f"`{var.type}`" + (" (secret)" if var.secret else "")
            out.append(f"| `{var.name}` | {kind} | {_cell(default)} | {_cell(var.description)} |")
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
                out += [op["description"].strip(), ""]
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


# --- the hook ---------------------------------------------------------------------------------


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill the generated sections; unlink pages that do not exist."""
    if CONFIG_MARKER in markdown:
        markdown = markdown.replace(CONFIG_MARKER, configuration_reference())
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, http_api_reference())
    return unlink_missing(markdown, page.file.src_path, Path(config.docs_dir))
