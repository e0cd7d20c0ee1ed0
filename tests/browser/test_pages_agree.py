"""A plan that ends, walked in the browser: billing, My data and the dataset page give the same
future dates, in one format, and an ended plan shows no quota or overage."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.jobs.http_session import Person
from tests.support.live_service import LiveService


def test_a_plan_set_to_end_then_ended_reads_the_same_on_every_page(
    page: Page, site: LiveService
) -> None:
    hedy = Person(site, "hedy@example.com", name="Hedy Lamarr")
    dataset_id = hedy.create_dataset("Frequency hopping", "sks_hedy")
    page.context.add_cookies(
        [
            {"name": cookie.name, "value": cookie.value or "", "url": site.url}
            for cookie in hedy.session.cookies
        ]
    )
    page.on("dialog", lambda dialog: dialog.accept())

    # Subscribe (development billing) and cancel at the end of the period.
    page.goto(f"{site.url}/pricing")
    page.locator("#choose-pro").click()
    expect(page.locator("#cancel-button")).to_be_visible()
    page.locator("#cancel-button").click()
    expect(page.locator("#subscription-ends")).to_contain_text("will not renew")
    ends = page.locator("#subscription-ends time").inner_text()
    media = page.locator("#delete-media time").inner_text()
    loras = page.locator("#delete-loras time").inner_text()
    one_format = re.compile(r"^\d{1,2} [A-Z][a-z]+ \d{4}$")  # 2 January 2027
    assert all(one_format.match(date) for date in (ends, media, loras)), (ends, media, loras)

    # My data tells the same story, with the dates ahead read as such.
    page.goto(f"{site.url}/my-data")
    expect(page.locator("main")).not_to_contain_text("Your subscription is active")
    expect(page.locator("#retention-reason")).to_contain_text(f"Your subscription ends on {ends}")
    expect(page.locator("#retention-media")).to_contain_text(f"will be deleted on {media}")
    expect(page.locator("#retention-loras")).to_contain_text(f"will be deleted on {loras}")
    page.goto(f"{site.url}/datasets/{dataset_id}")
    expect(page.locator("main")).to_contain_text(f"Will be deleted on {media}")

    # End the plan now: no quota, no overage, the plan reads as ended, no past-tense dates.
    page.goto(f"{site.url}/billing")
    page.locator("#dev-end-button").click()
    expect(page.locator("#plan-line")).to_have_text(re.compile(r"^\s*Pro plan:\s+ended\s*$"))
    expect(page.locator("#quota-summary")).to_have_text(
        re.compile(r"^No plan, so no GPU time is included\.")
    )
    for quota_part in ("#quota-allowance", "#quota-left", "#quota-overage"):
        expect(page.locator(quota_part)).to_have_count(0)
    page.goto(f"{site.url}/datasets")
    expect(page.locator("main")).not_to_contain_text("Deleted on")
