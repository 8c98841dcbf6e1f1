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


@pytest.fixture(scope="module")
def seri_demo() -> Iterator[Demo]:
    """The demo on the integration module's dialect (events at /pbx/seri, call_request)."""
    with Demo(DemoOptions(speed=8.0, dialect="seri")) as running:
        yield running
