"""One demo (callbridge's real HTTP service, the engine, the directory and the simulator)
shared by the end-to-end tests of this folder: each test looks only at its own calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callbridge.demo import Demo, DemoOptions


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    with Demo(DemoOptions(speed=8.0)) as running:
        yield running
