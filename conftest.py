"""Root pytest configuration: make each test folder's helper modules importable.

Tests live in package-less folders (``tests/<area>/``, ``connectors/<crm>/tests/``) and run
with ``--import-mode=importlib``, so two folders may both have a ``test_cli.py``. Shared helper
modules (``server_support.py``, ``sf_fake.py``, ...) have unique names and are imported by
name; this puts every test folder on ``sys.path`` once, before collection.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
_FOLDERS = [
    *sorted((ROOT / "tests").glob("*/")),
    *sorted(ROOT.glob("connectors/*/tests/")),
    *sorted(ROOT.glob("examples/*/tests/")),
]
for folder in _FOLDERS:
    if folder.is_dir() and str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
