"""A real browser against the live app: Debian's chromium driven by Playwright.

The app is served over HTTP with a real RQ worker beside it (tests/conftest.py's
live_service, on SQLite here); one chromium serves the whole folder and each test gets a fresh
browser context (its own cookies and storage). Screenshots go to the git-ignored
test-artifacts/ folder, always at the end of a test and on failure.

`site` is one live app + worker shared by the journey, screenshot and accessibility tests, on a
SQLite file and a Redis database of its own (other tests empty theirs); `showcase` is a
subscriber on it with a ready dataset and a trained run, for touring every key page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.browser.showcase import Showcase, serve_site
from tests.support.artifacts import ARTIFACTS
from tests.support.live_service import LiveService

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Remember each phase's outcome on the test item, for the screenshot on failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless chromium for the whole folder; tests open their own contexts in it."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def browser_context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies, no storage), closed after the test."""
    context = browser.new_context(accept_downloads=True)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="package")
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    """The live app and a worker shared by the journeys, screenshots and accessibility tests."""
    yield from serve_site(request, tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="package")
def showcase(site: LiveService) -> Showcase:
    """Grace, on the Pro plan, with a ready dataset and a run training (or trained) from it."""
    return Showcase.create(site)


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
