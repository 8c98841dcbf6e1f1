"""The public API of ``callbridge``: what it exports, the shared connector helpers, and who may
use what (the import-linter contract covers the installed packages; this covers the rest)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import Field, ValidationError
from pydantic_settings import SettingsConfigDict

import callbridge
from callbridge import (
    CommaList,
    KeyValueMap,
    OptionalRegion,
    PermanentError,
    PluginSettings,
    RetryLater,
    raise_for_crm_status,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_exported_name_exists() -> None:
    missing = [name for name in callbridge.__all__ if not hasattr(callbridge, name)]
    assert not missing
    for name in ("hookimpl", "PluginSettings", "NotConfigured", "to_e164", "TTLCache"):
        assert name in callbridge.__all__


@pytest.mark.parametrize("status", [200, 201, 204])
def test_a_success_raises_nothing(status: int) -> None:
    raise_for_crm_status(status, "write the activity")


@pytest.mark.parametrize(
    ("status", "header", "hint"),
    [(429, "7", 7.0), (503, None, None), (500, "soon", None), (408, None, None), (0, None, None)],
)
def test_passing_failures_retry_later(status: int, header: str | None, hint: float | None) -> None:
    with pytest.raises(RetryLater, match=rf"write the activity \(HTTP {status}\)") as caught:
        raise_for_crm_status(status, "write the activity", retry_after=header)
    assert caught.value.retry_after == hint


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 409, 422])
def test_refusals_are_permanent(status: int) -> None:
    with pytest.raises(PermanentError, match=rf"\(HTTP {status}\)"):
        raise_for_crm_status(status, "write the activity", retry_after=5.0)


class _Acme(PluginSettings):
    model_config = SettingsConfigDict(env_prefix="CALLBRIDGE_ACMETYPES_")

    objects: CommaList = Field(default_factory=list)
    owners: KeyValueMap = Field(default_factory=dict)
    default_region: OptionalRegion = None


def test_settings_types_read_the_short_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBRIDGE_ACMETYPES_OBJECTS", " Contact, Lead ,, ")
    monkeypatch.setenv("CALLBRIDGE_ACMETYPES_OWNERS", "201=005xx, 202 = jane@example.com")
    monkeypatch.setenv("CALLBRIDGE_ACMETYPES_DEFAULT_REGION", "it")
    settings = _Acme(_env_file=None)
    assert settings.objects == ["Contact", "Lead"]
    assert settings.owners == {"201": "005xx", "202": "jane@example.com"}
    assert settings.default_region == "IT"
    monkeypatch.setenv("CALLBRIDGE_ACMETYPES_OBJECTS", '["a,b"]')
    monkeypatch.setenv("CALLBRIDGE_ACMETYPES_OWNERS", '{"201": 5}')
    monkeypatch.setenv("CALLBRIDGE_ACMETYPES_DEFAULT_REGION", " ")
    settings = _Acme(_env_file=None)
    assert settings.objects == ["a,b"]
    assert settings.owners == {"201": "5"}
    assert settings.default_region is None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("OWNERS", "201=005xx,202", "'202' is not a key=value pair"),
        ("OWNERS", "=x", "'=x' is not a key=value pair"),
        ("DEFAULT_REGION", "XX", "'XX' is not a region code"),
    ],
)
def test_settings_types_name_the_bad_part(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"CALLBRIDGE_ACMETYPES_{variable}", value)
    with pytest.raises(ValidationError, match=message):
        _Acme(_env_file=None)


@pytest.mark.parametrize(
    "path",
    [
        *sorted((ROOT / "core/src/callbridge/templates/plugin").glob("*.py.tmpl")),
        ROOT / "examples/single-file/missed_calls_log.py",
        *sorted(ROOT.glob("connectors/*/tests/*.py")),
        *sorted(ROOT.glob("examples/*/tests/*.py")),
    ],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_templates_examples_and_connector_tests_use_the_public_api(path: Path) -> None:
    """Not installed packages, so import-linter cannot see them: checked here."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".tmpl":  # {{placeholders}} become names
        text = text.replace("{{", "x").replace("}}", "x")
    imports = _callbridge_imports(text)
    assert imports <= {"callbridge", "callbridge.testing"}, imports


def _callbridge_imports(text: str) -> set[str]:
    tree = ast.parse(text)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "callbridge" or name.startswith("callbridge.")}
