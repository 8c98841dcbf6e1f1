"""The documentation builds strictly, and its generated pages cover the code."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from callbridge.settings import Settings
from callbridge.testing.variables import variables

ROOT = Path(__file__).resolve().parents[2]


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("callbridge_docs_hooks", ROOT / "docs/hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    if mkdocs is None:
        pytest.fail("mkdocs is not installed (it is in the dev dependency group)")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [mkdocs, "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.slow
def test_strict_build_has_every_own_page(site: Path) -> None:
    for page in (
        "index.html",
        "quickstart/index.html",
        "configuration/index.html",
        "http-api/index.html",
        "operations/index.html",
        "security/index.html",
        "troubleshooting/index.html",
        "testing-plugins/index.html",
    ):
        assert (site / page).is_file(), page
    assert not (site / "hooks.py").exists()


@pytest.mark.slow
def test_configuration_page_lists_every_core_variable(site: Path) -> None:
    html = (site / "configuration/index.html").read_text()
    names = [var.name for var in variables(Settings)]
    assert "CALLBRIDGE_PBX__SOAP_URL" in names and "CALLBRIDGE_SERVER__API_TOKENS" in names
    missing = [name for name in names if name not in html]
    assert missing == []
    assert "CALLBRIDGE_CONSOLE_ENABLED" in html and "CALLBRIDGE_WEBHOOK_URLS" in html


@pytest.mark.slow
def test_http_api_page_lists_every_route(site: Path) -> None:
    html = (site / "http-api/index.html").read_text()
    document = _hooks().openapi_document()
    for path, methods in document["paths"].items():
        for method in methods:
            assert f"{method.upper()} {path}" in html, (method, path)


def test_configuration_reference_documents_each_field() -> None:
    """Every variable of every settings class (core and each installed plugin) has a row
    with a description, and no default renders with stray backticks."""
    hooks = _hooks()
    text = hooks.configuration_reference()
    rows = text.splitlines()
    for _title, cls, _intro in hooks.settings_classes():
        for var in variables(cls):
            row = next(
                r for r in rows if r.startswith("| ") and f"`{var.name}`" in r.split(" | ")[0]
            )
            assert row.rstrip(" |").rsplit(" | ", 1)[-1].strip(), f"{var.name} has no description"
    assert "``" not in text
    assert "| `CALLBRIDGE_INGRESS_TOKEN` | `SecretStr | None` (secret) |" in text
    assert "| `CALLBRIDGE_JOURNAL` | `SecretStr` (secret) | `sqlite` |" in text


def test_nav_drops_missing_pages_and_links_become_text(tmp_path: Path) -> None:
    hooks = _hooks()
    (tmp_path / "here.md").write_text("# here")
    nav = [{"Home": "here.md"}, {"Part": [{"Gone": "gone.md"}]}, {"Ext": "https://x.example"}]
    assert hooks._prune(nav, tmp_path) == [{"Home": "here.md"}, {"Ext": "https://x.example"}]
    text = "[a](here.md#x) [b](gone.md) [c](https://x.example) [d](#anchor)"
    assert hooks.unlink_missing(text, "page.md", tmp_path) == (
        "[a](here.md#x) b [c](https://x.example) [d](#anchor)"
    )
