"""Opening the agent panel in a browser the tests already launched (see conftest.py)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, Page

TIMEOUT_MS = 30_000


def open_page(
    browser: Browser, url: str, *, init_script: str | None = None, **context: Any
) -> tuple[Page, list[str]]:
    """A new context (``context``: Playwright's options, e.g. ``color_scheme``) showing
    ``url``; the page errors are collected in the list returned with it."""
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if init_script is not None:
        page.add_init_script(init_script)
    page.goto(url)
    return page, errors
