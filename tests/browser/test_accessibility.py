"""Every key page passes basic accessibility checks in a real browser.

For each page: labels on form controls, alt text on images, one h1 and no skipped heading
levels, named links and buttons, unique ids (tests/browser/a11y.js); the WCAG 2.1 A and AA
rules of axe-core (vendored under tests/browser/vendor/, never served), which include colour
contrast; the Tab key reaches the page's main action and shows where the focus is; and the
browser reports no errors (a Content-Security-Policy violation would be one).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.showcase import KeyPage, Showcase

HERE = Path(__file__).resolve().parent
CHECKS = (HERE / "a11y.js").read_text(encoding="utf-8")
AXE = HERE / "vendor" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PAGES = [
    "landing", "sign-up", "sign-in", "pricing", "dashboard", "datasets", "dataset", "new-run",
    "billing", "my-data", "account", "webhooks", "webhook", "api-keys", "api-reference",
    "privacy-policy", "not-found", "runs", "run",
]  # fmt: skip
MAX_TABS = 80


def open_key_page(page: Page, showcase: Showcase, name: str) -> KeyPage:
    """Open the named key page as its visitor would (signed in or not); returns it."""
    key = next(k for k in showcase.key_pages() if k.name == name)
    if name in ("run", "runs"):
        showcase.wait_trained()
    if key.signed_in:
        showcase.sign_in(page.context)
    response = page.goto(showcase.service.url + key.path)
    assert response is not None and response.status == key.status, key.path
    page.wait_for_load_state("load")
    return key


def axe_violations(page: Page) -> list[str]:
    """The page's WCAG 2.1 A/AA violations found by axe-core, one line per element."""
    # evaluate() runs outside the page's CSP, which (rightly) refuses injected script tags.
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "tags => axe.run(document,"
        " {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        AXE_TAGS,
    )
    return [
        f"{v['id']} ({v['impact']}): {node['target']} {node['failureSummary'].splitlines()[-1]}"
        for v in result["violations"]
        for node in v["nodes"]
    ]


def tab_until(page: Page, selector: str) -> int:
    """Press Tab from the top of the page until `selector` has the focus; the number of presses."""
    target = page.locator(selector).first
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    for presses in range(1, MAX_TABS + 1):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return presses
    raise AssertionError(f"{MAX_TABS} presses of Tab never reached {selector}")


def focus_is_visible(page: Page) -> bool:
    """True when the focused element draws an outline or a focus ring."""
    return page.evaluate(
        """() => { const s = getComputedStyle(document.activeElement);
                   return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
                          || s.boxShadow !== 'none'; }"""
    )


@pytest.mark.parametrize("name", PAGES)
def test_key_page_is_accessible(page: Page, showcase: Showcase, name: str) -> None:
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    key = open_key_page(page, showcase, name)

    problems = page.evaluate(CHECKS)
    assert not problems, "\n".join(problems)
    violations = axe_violations(page)
    assert not violations, "\n".join(violations)
    assert tab_until(page, key.primary) <= MAX_TABS
    assert focus_is_visible(page), f"no visible focus on {key.primary}"
    if key.status != 200:  # the page itself answers with its error status, as it should
        errors = [e for e in errors if f"status of {key.status}" not in e]
    assert errors == []


def test_the_skip_link_is_the_first_stop_and_moves_to_the_content(
    page: Page, showcase: Showcase
) -> None:
    open_key_page(page, showcase, "dashboard")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("el => el === document.activeElement")
    assert skip.is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"


def test_the_account_menu_works_from_the_keyboard(page: Page, showcase: Showcase) -> None:
    open_key_page(page, showcase, "dashboard")
    tab_until(page, ".account-menu summary")
    page.keyboard.press("Enter")
    menu = page.locator(".account-menu .menu")
    assert menu.is_visible()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Subscription"
    page.keyboard.press("Escape")
    assert not menu.is_visible()
    assert page.evaluate("() => document.activeElement.tagName") == "SUMMARY"
