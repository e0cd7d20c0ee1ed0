"""Every page tells the same story about a plan: one rule for deletion dates, no quota once a
plan ended, one date format, and the same GPU time on the run page and the billing page."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.billing.models import GpuUsage
from app.billing.services import current_subscription, long_date, long_moment
from app.db_types import utcnow
from app.extensions import db
from app.trainings.models import Generation, TrainingRun
from tests.app.privacy.support import add_dataset, add_run
from tests.support.billing import add_usage, choose_plan, person, press

EMAIL = "ada@example.com"


def _text(html: str, element_id: str) -> str:
    """The text of the element with `element_id`, tags dropped and spaces folded."""
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</(p|li|td|small)>', html, re.S)
    assert found, f"no #{element_id}"
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split())


def test_a_plan_set_to_end_shows_the_same_future_dates_on_every_page(
    app: Flask, signed_in: FlaskClient
) -> None:
    choose_plan(signed_in, "pro")
    with app.app_context():
        dataset_id = add_dataset(person(EMAIL).id)
    press(signed_in, "cancel")
    with app.app_context():
        end = current_subscription(person(EMAIL)).current_period_end
    media, loras = end + timedelta(days=30), end + timedelta(days=90)

    billing = signed_in.get("/billing").get_data(as_text=True)
    assert long_date(media) in _text(billing, "delete-media")
    assert long_date(loras) in _text(billing, "delete-loras")
    my_data = signed_in.get("/my-data").get_data(as_text=True)
    assert "Your subscription is active" not in my_data
    assert f"Your subscription ends on {long_date(end)}" in _text(my_data, "retention-reason")
    assert _text(my_data, "retention-media").endswith(f"will be deleted on {long_moment(media)}")
    assert _text(my_data, "retention-loras").endswith(f"will be deleted on {long_moment(loras)}")
    dataset_page = signed_in.get(f"/datasets/{dataset_id}").get_data(as_text=True)
    assert f"Will be deleted on {long_date(media)}" in dataset_page


def test_an_ended_plan_shows_no_quota_or_overage_and_reads_as_ended(
    app: Flask, signed_in: FlaskClient
) -> None:
    choose_plan(signed_in, "pro")
    with app.app_context():
        add_usage(person(EMAIL), 17, utcnow())
    press(signed_in, "dev/end")
    page = signed_in.get("/billing").get_data(as_text=True)
    for quota_part in ("quota-allowance", "quota-left", "quota-overage"):
        assert f'id="{quota_part}"' not in page
    assert _text(page, "quota-summary") == (
        "No plan, so no GPU time is included. Used this period: 17 s."
    )
    assert _text(page, "plan-line") == "Pro plan: ended"
    # Deleted-on dates are ahead: every page says they will be.
    assert "Deleted on" not in signed_in.get("/datasets").get_data(as_text=True)


def test_subscribing_again_keeps_the_earlier_usage_visible(
    app: Flask, signed_in: FlaskClient
) -> None:
    choose_plan(signed_in, "pro")
    used_at = utcnow() - timedelta(days=9)
    with app.app_context():  # a plan taken ten days ago, used a day later
        sub = current_subscription(person(EMAIL))
        sub.current_period_start = utcnow() - timedelta(days=10)
        add_usage(person(EMAIL), 125, used_at)
    press(signed_in, "dev/end")
    choose_plan(signed_in, "pro")  # a new subscription: its period starts now
    page = signed_in.get("/billing").get_data(as_text=True)
    assert 'id="usage-runs-empty"' in page, "nothing used in the new period yet"
    earlier = re.search(r'id="usage-earlier".*?</table>', page, re.S)
    assert earlier, "the usage before the new subscription is still shown"
    assert f"{used_at:%B %Y}" in earlier.group(0) and ">2 min<" in earlier.group(0)


def test_the_run_page_and_the_billing_page_agree_on_gpu_time(
    app: Flask, signed_in: FlaskClient
) -> None:
    choose_plan(signed_in, "pro")
    with app.app_context():
        user = person(EMAIL)
        run_id = add_run(user.id, add_dataset(user.id))
        run = db.session.get(TrainingRun, run_id)
        run.used_gpu_seconds = 125.0
        render = Generation(user_id=user.id, run_id=run_id, prompt="a", strength=1.0, seed=1)
        render.status = "succeeded"
        db.session.add(render)
        db.session.commit()
        now = utcnow()
        add_usage(user, 125, now, key="run:1", run_id=run_id)
        usage = add_usage(user, 17, now, key="generation:1", run_id=run_id)
        usage.kind = "generation"
        db.session.commit()
        assert db.session.scalar(select(GpuUsage.kind).where(GpuUsage.id == usage.id))
    run_page = signed_in.get(f"/runs/{run_id}").get_data(as_text=True)
    assert re.search(r'id="run-gpu-time">2 min<', run_page)
    assert "GPU time for try-it renders: 17 s" in _text(run_page, "try-it-gpu-time")
    live = signed_in.get(f"/api/runs/{run_id}").get_json()
    assert live["gpu_time"] == "2 min"

    billing = signed_in.get("/billing").get_data(as_text=True)
    rows = dict(
        re.findall(r'data-kind="(\w+)">.*?<td data-seconds="\d+">([^<]+)</td>', billing, re.S)
    )
    assert rows == {"training": "2 min", "generation": "17 s"}
    assert "try-it renders" in billing
