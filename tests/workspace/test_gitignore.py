"""What the README's commands create in the checkout must not show up in ``git status``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        # The bootstrap's own uv, installed with pip when uv is not on PATH (Makefile).
        ".venv-tools/bin/uv",
        "site/index.html",
    ],
)
def test_bootstrap_leftovers_are_ignored(path: str) -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run([git, "check-ignore", "--no-index", "-q", path], cwd=ROOT, check=False)
    assert done.returncode == 0, f"{path} is not ignored by .gitignore"
