"""The run page while a run trains and after it is cancelled, without a reload."""

from __future__ import annotations

import re
from collections import Counter

from playwright.sync_api import Page, expect

from tests.browser.showcase import Showcase
from tests.jobs.http_session import wait_for


def test_a_cancelled_run_page_stays_live_and_explains_itself(
    page: Page, showcase: Showcase
) -> None:
    showcase.wait_trained()  # the worker is free: this run starts at once
    grace = showcase.person
    started = grace.post_json(
        "/api/runs",
        {
            "dataset_id": showcase.dataset_id,
            "family": "tiny-sd",
            "preset": "character",
            "name": "Grace, cancelled",
            "params": {"steps": 5000, "rank": 4, "sample_every": 10, "checkpoint_every": 10},
        },
    )
    assert started.status_code == 201, started.text
    run_id = int(started.json()["id"])
    showcase.sign_in(page.context)
    page.goto(f"{showcase.service.url}/runs/{run_id}")

    # Training: samples carry their step and prompt, the chart has values on both axes.
    sample = page.locator("[data-field=samples] figure.sample").first
    expect(sample.locator("figcaption")).to_have_text(
        re.compile(r"^Step \d+ · a photo of sks_grace$"), timeout=120_000
    )
    chart = page.locator(".loss-chart")
    expect(chart).to_have_attribute(
        "aria-label",
        re.compile(r"^Training loss per step: steps 1 to \d+, loss between [\d.]+ and"),
    )
    ticks = chart.evaluate("box => box.uplot.axes.map(axis => axis._values)")
    assert len(ticks) == 2 and all(len(values) >= 2 for values in ticks), ticks
    assert all(re.fullmatch(r"[\d.,]+", str(value)) for values in ticks for value in values), ticks
    expect(page.locator("[data-field=checkpoints] a").first).to_be_visible()
    eta = page.locator("[data-field=eta]")
    expect(eta).to_have_text(re.compile(r"^about \d+ (s|min( \d+ s)?|h( \d+ min)?)$"))

    # Cancel: the page turns to the final state by itself.
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("[data-field=status]")).to_have_text("cancelled", timeout=30_000)
    expect(page.get_by_role("button", name="Cancel run")).to_be_hidden()
    status = wait_for(
        showcase.service,
        lambda: (s := grace.run_status(run_id))["status"] == "cancelled" and s,
        30,
        "the cancelled run",
    )
    links = page.locator("[data-field=checkpoints] a")
    assert status["checkpoints"][-1] == status["step"]  # saved where it stopped
    layouts = ("diffusers", "ComfyUI / A1111")  # each checkpoint in both formats
    expect(links).to_have_text(
        [f"Checkpoint at step {s} ({layout})" for s in status["checkpoints"] for layout in layouts]
    )
    expect(eta).to_have_text("—")

    # The log says each thing once, and how many checkpoints are kept.
    log = page.locator("[data-field=log]")
    expect(log).to_contain_text(f"stopped on request at step {status['step']}")
    lines = [line.split(" ", 1)[1] for line in log.inner_text().splitlines() if " " in line]
    assert not [line for line, count in Counter(lines).items() if count > 1], lines
    kept = re.compile(r"checkpoint saved at step \d+ \(the newest 2 are kept: steps \d+, \d+\)")
    assert any(kept.fullmatch(line) for line in lines), lines


def test_the_run_form_the_preview_and_how_to_use_explain_themselves(
    page: Page, showcase: Showcase
) -> None:
    showcase.sign_in(page.context)
    url = showcase.service.url
    hint = "32 to 512 px, a multiple of 16; 64 by default."

    # The run form: a preset the base model cannot use says why; the resolution its range.
    page.goto(f"{url}/runs/new")
    page.get_by_label("Base model").select_option("tiny-sd")
    motion = page.locator("#preset option[value=motion]")
    expect(motion).to_be_disabled()
    expect(motion).to_have_text(re.compile(r"^Motion .*\(for video base models only\)$"))
    page.get_by_text("Advanced settings").click()
    expect(page.locator(".field", has=page.locator("#resolution")).locator(".hint")).to_have_text(
        hint
    )

    # The bucket preview offers only what this server trains, with the same range.
    page.goto(f"{url}/datasets/{showcase.dataset_id}")
    expect(page.locator("#preview-family option")).to_have_text(["Tiny SD (CPU demo)"])
    expect(page.locator("#preview-resolution-hint")).to_have_text(hint)
    expect(page.locator("#preview-resolution")).to_have_attribute("max", "512")

    # How to use names the base model the LoRA goes with.
    showcase.wait_trained()
    page.goto(f"{url}/runs/{showcase.run_id}")
    page.get_by_text("How to use").click()
    expect(page.locator("#base-model")).to_have_text(re.compile(r"tiny-sd$"))
    expect(page.locator("#how-to-use")).to_contain_text("The LoRA was trained on Tiny SD")
