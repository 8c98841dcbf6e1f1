"""The tests here start real redis-server and ``callbridge serve`` processes (all but the
compose file's check, which only reads files)."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        path = Path(str(item.path))
        if path.parent == here and path.name != "test_compose_scale.py":
            item.add_marker(pytest.mark.redis)
            item.add_marker(pytest.mark.slow)
