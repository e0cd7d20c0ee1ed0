"""Screenshots of every key page at desktop and phone widths, with layout checks.

The pictures go to test-artifacts/screenshots/<page>-<width>.png (git-ignored) for people to
look at; the test fails if a page is wider than the window, header items overlap, an image is
broken or content spills out of a card, button or badge.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.showcase import KeyPage, Showcase
from tests.support.artifacts import ARTIFACTS

LAYOUT = (Path(__file__).resolve().parent / "layout.js").read_text(encoding="utf-8")
SHOTS = ARTIFACTS / "screenshots"
WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}


def settle(page: Page) -> None:
    """Wait until images have loaded and the uploader has drawn itself."""
    page.wait_for_load_state("load")
    page.wait_for_function(
        "() => [...document.images].every(img => img.complete)"
        " && (!document.getElementById('uppy-dashboard')"
        "     || document.querySelector('#uppy-dashboard .uppy-Dashboard'))"
    )


def shoot(page: Page, name: str, width: str) -> list[str]:
    """Check the layout and save a full-page screenshot; the layout problems found."""
    settle(page)
    problems = [f"{name} at {width}: {problem}" for problem in page.evaluate(LAYOUT)]
    page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    return problems


def visit(context: BrowserContext, showcase: Showcase, key: KeyPage) -> Page:
    """Open one key page in a tab of `context`."""
    page = context.new_page()
    response = page.goto(showcase.service.url + key.path)
    assert response is not None and response.status == key.status, key.path
    return page


@pytest.mark.parametrize("width", WIDTHS)
def test_every_key_page_looks_right(browser: Browser, showcase: Showcase, width: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    showcase.wait_trained()
    w, h = WIDTHS[width]
    visitor = browser.new_context(viewport={"width": w, "height": h})
    grace = browser.new_context(viewport={"width": w, "height": h})
    showcase.sign_in(grace)
    problems: list[str] = []
    try:
        for key in showcase.key_pages():
            page = visit(grace if key.signed_in else visitor, showcase, key)
            problems += shoot(page, key.name, width)
            if key.name == "dashboard":
                page.locator(".account-menu summary").click()
                problems += shoot(page, "account-menu", width)
            page.close()
    finally:
        visitor.close()
        grace.close()
    assert not problems, "\n".join(problems)
    for key in showcase.key_pages():
        assert (SHOTS / f"{key.name}-{width}.png").stat().st_size > 5000
