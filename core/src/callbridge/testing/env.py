"""Isolation of ``CALLBRIDGE_*`` variables: each test starts from a clean environment.

Settings classes read the process environment and a ``.env`` in the working directory, so a
developer's own configuration (or another test's) would leak into a test. ``CallbridgeEnv``
removes every ``CALLBRIDGE_*`` variable, moves into an empty temporary directory (no stray
``.env``) and points ``CALLBRIDGE_DATA_DIR`` at a temporary folder; pytest's ``monkeypatch``
puts everything back afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

    from ..settings import Settings

PREFIX = "CALLBRIDGE_"


class CallbridgeEnv:
    """The test's environment: ``set``/``unset`` variables, read ``settings()``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self._mp = monkeypatch
        for name in list(os.environ):
            if name.upper().startswith(PREFIX):
                monkeypatch.delenv(name)
        self.workdir = tmp_path / "cwd"
        self.workdir.mkdir(parents=True, exist_ok=True)
        monkeypatch.chdir(self.workdir)
        self.data_dir = tmp_path / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.set(CALLBRIDGE_DATA_DIR=str(self.data_dir))

    def set(self, variables: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        """Set variables (values are turned into text; None unsets)."""
        for name, value in {**(variables or {}), **more}.items():
            if value is None:
                self._mp.delenv(name, raising=False)
            else:
                self._mp.setenv(name, str(value))

    def unset(self, *names: str) -> None:
        """Remove variables (missing ones are fine)."""
        for name in names:
            self._mp.delenv(name, raising=False)

    def write_dotenv(self, text: str) -> Path:
        """Write a ``.env`` in the working directory (settings classes read it)."""
        path = self.workdir / ".env"
        path.write_text(text, encoding="utf-8")
        return path

    def settings(self, **overrides: Any) -> Settings:
        """The core settings as the service would read them now."""
        from ..settings import load_settings

        return load_settings(**overrides)

    def __repr__(self) -> str:
        names = sorted(n for n in os.environ if n.upper().startswith(PREFIX))
        return f"CallbridgeEnv({', '.join(names)})"
