"""The agent panel in a real browser: Debian's headless Chromium driven by Playwright.

callbridge and the simulator run for real (the demo's assembly, one per test module); the
page is opened the way a CRM link opens it, ``/agent#extension=201&token=...``. Without
``chromium`` the tests skip, unless CALLBRIDGE_TEST_REQUIRE_SERVICES=1 (CI), where they fail
(``callbridge.testing.services``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from panel_support import open_page
from playwright.sync_api import Browser, Page, sync_playwright

from callbridge.demo import Demo, DemoOptions
from callbridge.testing.services import require, skip_marker

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every panel test needs the browser: skip (or, in CI, fail) when it is missing."""
    skip = skip_marker("chromium")
    if skip is None:
        return
    for item in items:
        if "tests/panel/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    # The simulated customer answers panel calls after half a second and never hangs up
    # first: the tests hang up with the panel's button.
    options = DemoOptions(speed=4.0, panel_answer_after=0.5, panel_talk_time=600.0)
    with Demo(options) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, one per test module."""
    with sync_playwright() as playwright:
        running = playwright.chromium.launch(
            executable_path=require("chromium"), args=CHROMIUM_ARGS
        )
        try:
            yield running
        finally:
            running.close()


@pytest.fixture(scope="module")
def page(demo: Demo, browser: Browser) -> Iterator[Page]:
    """The panel for extension 201, open; fails the module if the page raised an error."""
    page, errors = open_page(browser, demo.panel_url("201"))
    yield page
    assert not errors, errors
