"""The README's "Set-up" section stays two commands, whatever else the README grows."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_setup_is_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Set-up.*?(?=^## )", readme, re.MULTILINE | re.DOTALL)
    assert section is not None
    blocks = re.findall(r"```sh\n(.*?)```", section.group(), re.DOTALL)
    assert len(blocks) == 1, blocks
    commands = [line.split("#")[0].strip() for line in blocks[0].splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]
