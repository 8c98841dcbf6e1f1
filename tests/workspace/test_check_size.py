"""``tools/check_size.py`` (run by ``make lint``) flags long files and long functions only."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "check_size.py"


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_size", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _function(name: str, lines: int, indent: str = "") -> str:
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 1))
    return f"{indent}def {name}() -> None:\n{body}"


def test_a_long_function_and_a_long_file_are_flagged(tmp_path: Path) -> None:
    checker = _checker()
    checker.ROOT = tmp_path
    source = tmp_path / "long.py"
    filler = "".join(f"y{i} = {i}\n" for i in range(440))
    source.write_text(_function("fits", 60) + _function("too_long", 61) + filler)
    found = checker.breaches(source)
    assert found == [
        "long.py: 561 lines (limit 500)",
        "long.py:61: too_long() has 61 lines (limit 60)",
    ]


def test_nested_functions_are_measured_on_their_own(tmp_path: Path) -> None:
    checker = _checker()
    checker.ROOT = tmp_path
    source = tmp_path / "factory.py"
    routes = _function("one", 40, "    ") + _function("two", 40, "    ")
    source.write_text("def factory() -> None:\n" + routes + "    return None\n")
    assert checker.breaches(source) == []


def test_the_sources_pass() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
