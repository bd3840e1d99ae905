"""Fixtures shared by the whole suite: the m365sim plugin and one headless chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["m365sim.testing", "sfsim.testing"]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator[Any]:
    """Debian's chromium driven by playwright, one per test module.

    Playwright's sync API runs its own event loop on the main thread while it is open, so
    only one ``sync_playwright()`` may be open at a time, and tests after it that start an
    event loop of their own (``asyncio.run``) must not find it still running: each browser
    module opens and closes its own, through this fixture.
    Without chromium the browser tests are skipped locally and fail in CI
    (``M365SYNC_TEST_REQUIRE_SERVICES``); ``scripts/test.sh`` installs it.
    """
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("M365SYNC_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        message = f"chromium not installed at {executable} (scripts/test.sh installs it)"
        if os.environ.get("M365SYNC_TEST_REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
