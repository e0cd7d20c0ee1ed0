"""A real browser against the live app: Debian's chromium driven by Playwright.

The app is served over HTTP with a real RQ worker beside it (tests/jobs/conftest.py's
live_service, on SQLite here); each test gets a fresh browser profile. Screenshots go to the
git-ignored test-artifacts/ folder, always at the end of a test and on failure.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.jobs.conftest import live_service  # noqa: F401  (the live app + worker fixture)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Remember each phase's outcome on the test item, for the screenshot on failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def browser_context(tmp_path: Path) -> Iterator[BrowserContext]:
    """Chromium with a fresh user-data folder, closed after the test."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    profile = tmp_path / "chromium-profile"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            accept_downloads=False,
        )
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(request: pytest.FixtureRequest, browser_context: BrowserContext) -> Iterator[Page]:
    """A tab; its screenshot is saved under test-artifacts/ when the test ends."""
    tab = browser_context.new_page()
    tab.set_default_timeout(20_000)
    yield tab
    failed = getattr(request.node, "report_call", None)
    suffix = "-failed" if failed is not None and failed.failed else ""
    ARTIFACTS.mkdir(exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    tab.screenshot(path=str(ARTIFACTS / f"{name}{suffix}.png"), full_page=True)
