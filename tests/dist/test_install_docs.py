"""The docs never tell anyone to ``pip install`` a callbridge package by name from PyPI.

None is published there: an instruction like ``pip install callbridge-salesforce`` fails, or
installs whatever somebody else uploaded under that name. Installs name a wheel file from
``make dist`` or a private index (``--index-url``), as docs/install.md says.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: ``pip install`` (or ``uv pip install``) with a bare callbridge distribution name.
BY_NAME = re.compile(r"pip install (?:-[-\w]+ )*callbridge(?:-[a-z-]+)?(?=[\s`'\"]|$)")
#: The one sentence that shows the bad form to warn against it.
WARNING = "A plain `pip install callbridge-salesforce` would look the name up"


def _pages() -> list[Path]:
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", *ROOT.glob("docs/**/*.md")]
    pages += [*ROOT.glob("connectors/*/README.md"), *ROOT.glob("examples/*/README.md")]
    return pages


def test_the_pattern_catches_what_it_is_for() -> None:
    assert BY_NAME.search("run `pip install callbridge-salesforce` then")
    assert BY_NAME.search("pip install -U callbridge")
    assert not BY_NAME.search("pip install dist/callbridge_salesforce-0.1.0-py3-none-any.whl")
    assert not BY_NAME.search("pip install /tmp/callbridge-0.1.0-py3-none-any.whl")


def test_no_page_installs_an_unpublished_name() -> None:
    offenders = []
    for page in _pages():
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if BY_NAME.search(line) and "--index-url" not in line and WARNING not in line:
                offenders.append(f"{page.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
