"""The three journeys of PRODUCT.md in a real browser, one person (Ada) from sign-up on.

Journey 1 trains the run that journeys 2 and 3 use, so they share one browser tab and one
live site (app + real RQ worker on tiny-sd + the embedded storage) and run in order.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.browser.showcase import portrait_png, upload_progress
from tests.support.artifacts import ARTIFACTS
from tests.support.live_service import LiveService
from tests.support.lora_checks import assert_loads_and_changes_output

PASSWORD = "correct horse battery staple"
IMAGES = 4
STEPS = 300  # long enough (a few seconds on CPU) for the page's polls to see it train
EVERY = STEPS // 2
SHOTS = ARTIFACTS / "screenshots"


@dataclass
class Journey:
    """Ada's tab, and what journey 1 left for the others."""

    page: Page
    site: LiveService
    downloads: Path
    run_name: str = "Ada portraits v1"
    run_url: str | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def go(self, path: str) -> None:
        """Open a path of the site."""
        self.page.goto(self.site.url + path)

    def snap(self, moment: str) -> None:
        """Keep a screenshot of this moment of the journey for people to look at."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"journey-{moment}.png"), full_page=True)

    def download(self, link_name: str, save_as: str = "") -> Path:
        """Click the link called `link_name` in the page's content and keep what it downloads."""
        link = self.page.locator("main").get_by_role("link", name=link_name, exact=True)
        with self.page.expect_download() as info:
            link.first.click()
        download = info.value
        target = self.downloads / (save_as or download.suggested_filename)
        download.save_as(target)
        return target


@pytest.fixture(scope="module")
def journey(
    browser: Browser, site: LiveService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Journey]:
    """One browser context for Ada, kept across the three journeys."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield Journey(page, site, tmp_path_factory.mktemp("downloads"))
    context.close()


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request: pytest.FixtureRequest, journey: Journey) -> Iterator[None]:
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        journey.page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failed.png"))


def _folder_of_images(root: Path) -> Path:
    folder = root / "ada"
    folder.mkdir()
    for index in range(IMAGES):
        (folder / f"{index:02d}.png").write_bytes(portrait_png(index))
    (folder / "00.txt").write_text("sks_ada in a blue coat", encoding="utf-8")
    return folder


def _watch_run(journey: Journey) -> list[tuple[str, int, int, str]]:
    """(status, step, samples shown, ETA) as the run page shows them, until it has finished."""
    page = journey.page
    seen: list[tuple[str, int, int, str]] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            state = page.evaluate(
                """() => [document.querySelector('[data-field=status]')?.textContent.trim(),
                          Number(document.querySelector('[data-field=step]')?.textContent),
                          document.querySelectorAll('[data-field=samples] img').length,
                          document.querySelector('[data-field=eta]')?.textContent.trim()]"""
            )
        except PlaywrightError:  # the page reloads itself once the run has finished
            page.wait_for_load_state("load")
            continue
        if state[0] is not None and (not seen or tuple(state) != seen[-1]):
            seen.append(tuple(state))
            if state[0] == "running" and state[2] and not any(s[2] for s in seen[:-1]):
                journey.snap("run-live")  # the first sample, while it trains
        if state[0] in ("succeeded", "failed", "cancelled"):
            # The page reloads itself once to show the downloads.
            page.wait_for_selector("[data-field=downloads] a", timeout=20_000)
            break
        page.wait_for_timeout(150)
    return seen


def test_journey_1_sign_up_upload_caption_train_and_download(
    journey: Journey, tmp_path: Path
) -> None:
    page = journey.page

    # Sign up from the landing page.
    journey.go("/")
    page.get_by_role("link", name="Create an account").click()
    page.locator("input[name=name]").fill("Ada Lovelace")
    page.locator("input[name=email]").fill("ada@example.com")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=adult]").check()
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/dashboard")
    expect(page.locator("h1")).to_have_text("Hello, Ada Lovelace")
    expect(page.locator("#plan-badge")).to_have_text("No plan")
    expect(page.locator("#getting-started li.current")).to_contain_text("Choose a plan")

    # Activate a plan (development billing: no Stripe, nothing charged).
    page.locator("#plan-badge").click()
    page.locator("#choose-pro").click()
    expect(page.locator(".flash").first).to_contain_text("Pro is active")
    expect(page.locator("#plan-badge")).to_have_text("Pro")

    # Create a dataset and drop a folder of images (one with a .txt caption) into it.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Datasets").click()
    page.locator("input[name=name]").fill("Ada portraits")
    page.locator("input[name=trigger_word]").fill("sks_ada")
    page.get_by_role("button", name="Create dataset").click()
    expect(page.locator("h1")).to_have_text("Ada portraits")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 40, "downloadThroughput": -1, "uploadThroughput": 16_000},
    )
    page.locator("#uppy-dashboard input[type=file][webkitdirectory]").set_input_files(
        _folder_of_images(tmp_path)
    )
    progress = upload_progress(page)
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
             "downloadThroughput": -1, "uploadThroughput": -1})  # fmt: skip
    assert progress[-1] == 100 and progress == sorted(progress), progress
    assert [p for p in progress if 0 < p < 100], f"the progress bar never moved: {progress}"
    expect(page.locator(".uppy-Dashboard-Item")).to_have_count(IMAGES)
    expect(page.locator("#items-grid li[data-status=ready]")).to_have_count(IMAGES, timeout=60_000)
    first = page.locator("#items-grid li", has_text="ada/00.png")
    expect(first.locator("textarea.caption")).to_have_value("sks_ada in a blue coat")
    journey.snap("dataset-uploaded")

    # Edit a caption; it is saved as soon as the field loses focus, and is still there later.
    second = page.locator("#items-grid li", has_text="ada/01.png")
    second.locator("textarea.caption").fill("sks_ada smiling, studio light")
    second.locator("textarea.caption").press("Tab")
    expect(second.locator(".caption-state")).to_have_text("saved")
    page.reload()
    expect(
        page.locator("#items-grid li", has_text="ada/01.png").locator("textarea.caption")
    ).to_have_value("sks_ada smiling, studio light")

    # The bucket preview: what each image becomes for the base model, before any GPU time.
    page.get_by_role("button", name="Show the preview").click()
    # A CPU job plans it; on a busy machine its worker takes a few seconds to start.
    expect(page.locator(".preview-state")).to_contain_text(
        f"{IMAGES} kept, 0 dropped", timeout=30_000
    )
    expect(page.locator(".preview-result tbody tr")).to_have_count(IMAGES)
    expect(page.locator(".preview-result tbody")).to_contain_text("64\u00d764")

    # Start a short run: tiny-sd, a sample and a checkpoint half way and at the end.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    page.locator("main").get_by_role("link", name="New run").click()
    page.get_by_label("Run name").fill(journey.run_name)
    page.get_by_label("Dataset").select_option(label="Ada portraits")
    page.get_by_label("Base model").select_option("tiny-sd")
    page.get_by_label("Preset").select_option("character")
    page.get_by_text("Advanced settings").click()
    page.locator("#steps").fill(str(STEPS))
    page.locator("#rank").fill("4")
    page.locator("#resolution").fill("64")
    page.locator("#sample_every").fill(str(EVERY))
    page.locator("#checkpoint_every").fill(str(EVERY))
    page.locator("#steps").press("Tab")  # the estimate follows the step count
    # In minutes and seconds, and from the benchmark or the runs measured on this site so far.
    expect(page.locator("#estimate")).to_have_text(
        re.compile(
            r"^Estimated GPU time: about \d+ (s|min( \d+ s)?|h( \d+ min)?) "
            r"\(from (our benchmark|the last)"
        )
    )
    expect(page.locator("#estimate")).to_contain_text("left this period")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url("**/runs/*")
    journey.run_url = page.url
    expect(page.locator("h1")).to_have_text(journey.run_name)

    # Watch it train: the status, the step counter and a sample image update live.
    seen = _watch_run(journey)
    statuses = [status for status, *_ in seen]
    assert statuses[-1] == "succeeded", seen
    assert "running" in statuses, f"never saw the run running: {seen}"
    live = [(step, samples) for status, step, samples, _ in seen if status == "running"]
    assert any(0 < step < STEPS or samples for step, samples in live), (
        f"the page showed no progress while the run was going: {seen}"
    )
    assert [step for _, step, *_ in seen] == sorted(step for _, step, *_ in seen), seen
    etas = [eta for status, _, _, eta in seen if status == "running" and eta != "—"]
    assert etas and all(re.fullmatch(r"about \d+ (s|min( \d+ s)?)", eta) for eta in etas), seen
    expect(page.locator("[data-field=step]")).to_have_text(str(STEPS))
    sample = page.locator("[data-field=samples] img").first
    expect(sample).to_be_visible()
    assert sample.evaluate("img => img.complete && img.naturalWidth > 0")

    # Download the LoRA.
    lora = journey.download("LoRA (diffusers)")
    assert lora.suffix == ".safetensors" and lora.stat().st_size > 1000
    journey.files["lora"] = lora

    # The next run's estimate is calibrated from what the runs here took, this one included.
    journey.go("/runs/new")
    expect(page.locator("#estimate")).to_contain_text("(from the last")


def test_journey_2_subscription_shows_usage_then_cancel_and_reactivate(journey: Journey) -> None:
    if "lora" not in journey.files:
        pytest.skip("journey 1 did not finish")
    page = journey.page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    expect(page.locator("h1")).to_have_text("Subscription")
    expect(page.locator("#plan-name")).to_have_text("Pro")
    expect(page.locator("#subscription-status")).to_have_text("Active")

    # The run's GPU time is on the page, in the period total and in the per-run table.
    row = page.locator("#usage-runs tbody tr", has_text=journey.run_name)
    expect(row).to_have_count(1)
    assert int(row.locator("td[data-seconds]").get_attribute("data-seconds") or 0) > 0
    assert int(page.locator("#quota-used").get_attribute("data-seconds") or 0) > 0
    busy_days = page.locator("#usage-chart rect[data-seconds]:not([data-seconds='0'])")
    expect(busy_days).not_to_have_count(0)

    # Cancel: the plan stays until the end of the period, and the page says when data goes.
    page.locator("#cancel-button").click()
    expect(page.locator(".flash").first).to_contain_text("Your subscription ends on")
    ends = _time(page, "#subscription-ends time")
    assert ends > datetime.now(ends.tzinfo)
    assert _time(page, "#delete-media time") - ends == timedelta(days=30)
    assert _time(page, "#delete-loras time") - ends == timedelta(days=90)
    expect(page.locator("#plan-badge")).to_have_text("Pro")  # still active until then
    expect(page.locator("#reactivate-button")).to_be_visible()
    journey.snap("billing-cancelled")

    # Reactivate: it renews again and no deletion is scheduled.
    page.locator("#reactivate-button").click()
    expect(page.locator(".flash").first).to_contain_text("renew")
    expect(page.locator("#subscription-renews")).to_be_visible()
    expect(page.locator("#deletion-dates")).to_have_count(0)
    expect(page.locator("#cancel-button")).to_be_visible()


def test_journey_3_download_lora_checkpoint_and_comfyui_and_load_them(journey: Journey) -> None:
    if "lora" not in journey.files:
        pytest.skip("journey 1 did not finish")
    page = journey.page

    # From the runs list.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    row = page.locator("main tbody tr", has_text=journey.run_name)
    expect(row.locator(".badge")).to_have_text("succeeded")
    from_list = journey.download(
        f"Download the LoRA of {journey.run_name}", save_as="from-list.safetensors"
    )
    assert from_list.read_bytes() == journey.files["lora"].read_bytes()

    # From the run page: the final LoRA and the half-way checkpoint, each in both formats.
    row.get_by_role("link", name=journey.run_name, exact=True).click()
    expect(page.locator("h1")).to_have_text(journey.run_name)
    lora = journey.download("LoRA (diffusers)", save_as="lora.safetensors")
    comfy = journey.download("LoRA (ComfyUI / A1111)", save_as="comfyui.safetensors")
    checkpoint = journey.download(
        f"Checkpoint at step {EVERY} (diffusers)", save_as="checkpoint.safetensors"
    )
    checkpoint_comfy = journey.download(
        f"Checkpoint at step {EVERY} (ComfyUI / A1111)", save_as="checkpoint_comfyui.safetensors"
    )
    files = [lora, comfy, checkpoint, checkpoint_comfy]
    for path in files:
        assert path.read_bytes()[8:9] == b"{", f"{path.name} is not a safetensors file"

    # Each file loads into the tiny pipeline with diffusers and changes what it draws.
    assert_loads_and_changes_output(journey.site, files)


def _time(page: Page, selector: str) -> datetime:
    return datetime.fromisoformat(page.locator(selector).get_attribute("datetime") or "")
