"""Every test here starts real redis-server and ``callbridge serve`` processes."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.path)).parent == here:
            item.add_marker(pytest.mark.redis)
            item.add_marker(pytest.mark.slow)
