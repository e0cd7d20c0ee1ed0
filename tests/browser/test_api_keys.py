"""An API key made in a real browser: found through the account menu, shown once, working over
HTTP for a script, never shown again, and dead the moment it is revoked."""

from __future__ import annotations

import requests
from playwright.sync_api import Page, expect

from tests.browser.showcase import Showcase


def test_a_key_made_in_the_browser_is_shown_once_and_revoked_at_once(
    page: Page, showcase: Showcase
) -> None:
    showcase.sign_in(page.context)
    page.goto(showcase.service.url + "/dashboard")
    page.locator(".account-menu summary").click()
    page.locator(".account-menu").get_by_role("link", name="API keys").click()
    expect(page.locator("h1")).to_have_text("API keys")
    page.get_by_label("Key name").fill("Grace's laptop")
    page.get_by_label("Access").select_option("read write")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_contain_text("only time it is shown")
    key = page.locator("#new-key-value").input_value()
    assert key.startswith("att_live_") and len(key) == 52

    usage = requests.get(f"{showcase.service.url}/api/v1/usage",
                         headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
    assert usage.status_code == 200 and usage.json()["plan"]["name"] == "pro"

    page.goto(showcase.service.url + "/account/api-keys")
    assert key not in page.content()  # never again
    row = page.locator("#keys tbody tr", has_text="Grace's laptop")
    expect(row).to_contain_text(key[:15] + "…")
    expect(row).to_contain_text("Read and write")
    expect(row.locator("td").nth(4)).not_to_have_text("never")  # the script's call was noted

    row.get_by_role("button", name="Revoke Grace's laptop").click()
    expect(page.locator(".flash").first).to_contain_text("Revoked")
    expect(page.locator("#keys tbody tr", has_text="Grace's laptop")).to_have_count(0)
    refused = requests.get(f"{showcase.service.url}/api/v1/usage",
                           headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
    assert refused.status_code == 401 and refused.json()["reason"] == "unknown"
