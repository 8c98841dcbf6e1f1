"""Root pytest configuration: make each test folder's helper modules importable.

Tests live in package-less folders (``tests/<area>/``, ``connectors/<crm>/tests/``) and run
with ``--import-mode=importlib``, so two folders may both have a ``test_cli.py``. Shared helper
modules (``server_support.py``, ``sf_fake.py``, ...) have unique names and are imported by
name; this puts every test folder on ``sys.path`` once, before collection.

It also ends a run that skipped tests for want of MariaDB, Redis or Chromium with one line
saying so (``pytest_unconfigure`` below).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
_FOLDERS = [
    *sorted((ROOT / "tests").glob("*/")),
    *sorted(ROOT.glob("connectors/*/tests/")),
    *sorted(ROOT.glob("examples/*/tests/")),
]
for folder in _FOLDERS:
    if folder.is_dir() and str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def pytest_unconfigure(config: pytest.Config) -> None:
    """End the run with one plain line when tests skipped for a missing MariaDB, Redis or
    Chromium: which, how many tests, and the command that installs them (``make services``).

    After pytest's own summary line, so it is the last thing a new user sees; the skip
    reasons come from ``callbridge.testing.services``.
    """
    from callbridge.testing.services import service_of_skip, summary_line

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped: Counter[str] = Counter()
    for report in reporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            key = service_of_skip(str(longrepr[2]))
            if key is not None:
                skipped[key] += 1
    if skipped:
        reporter.write_line(summary_line(skipped), yellow=True, bold=True)
