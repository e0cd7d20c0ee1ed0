"""The landing page, the signed-in dashboard and the header's plan badge."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, g, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from app.accounts.models import User
from app.billing.services import long_date, long_moment, scheduled_end, standing
from app.billing.usage import QuotaStatus, format_gpu_time
from app.datasets.limits import megabytes
from app.datasets.services import (
    DatasetSummary,
    storage_allowance,
    storage_used,
    summarize_datasets,
)
from app.extensions import db
from app.getting_started import STEPS
from app.plans import Plan
from app.trainings.families import FAMILIES
from app.trainings.models import TrainingRun
from app.trainings.quota import period_quota
from app.trainings.services import list_runs

log = logging.getLogger(__name__)
bp = Blueprint("pages", __name__)
RECENT_RUNS = 6


@dataclass(frozen=True)
class Dashboard:
    """What the dashboard shows: plan, this period's GPU time, datasets and recent runs."""

    plan: Plan | None
    renews_at: datetime | None
    ends_at: datetime | None
    quota: QuotaStatus
    datasets: list[DatasetSummary]
    runs: list[TrainingRun]
    run_count: int
    storage_used: int
    storage_allowance: int

    @property
    def has_ready_dataset(self) -> bool:
        """True once some dataset has an item ready to train on."""
        return any(summary.ready for summary in self.datasets)

    @property
    def has_finished_run(self) -> bool:
        """True once some run has produced a LoRA."""
        return any(run.status == "succeeded" for run in self.runs)

    @property
    def steps_done(self) -> list[bool]:
        """The getting-started checklist: plan, dataset, run, download."""
        return [
            self.plan is not None,
            self.has_ready_dataset,
            self.run_count > 0,
            self.has_finished_run,
        ]


def build_dashboard(user: User) -> Dashboard:
    """Gather the person's plan, quota, datasets and runs for the dashboard."""
    account = standing(user)
    subscription, access = account.subscription, account.access
    end = scheduled_end(subscription) if access else None
    runs = list_runs(user)
    return Dashboard(
        plan=account.plan,
        renews_at=subscription.current_period_end if subscription and access and not end else None,
        ends_at=end,
        quota=period_quota(account),
        datasets=summarize_datasets(user),
        runs=runs[:RECENT_RUNS],
        run_count=len(runs),
        storage_used=storage_used(user),
        storage_allowance=storage_allowance(user, account),
    )


@bp.route("/")
def index() -> Response | str:
    """Signed-in people go to their dashboard; others see what Attune is."""
    if current_user.is_authenticated:
        return redirect(url_for("pages.dashboard"))
    return render_template("index.html")


@bp.route("/dashboard")
@login_required
def dashboard() -> str:
    """Plan, this period's GPU time, datasets and runs at a glance, with the next step."""
    return render_template(
        "dashboard.html",
        board=build_dashboard(current_user),
        steps=STEPS,
        megabytes=megabytes,
        family_labels={name: info.label for name, info in FAMILIES.items()},
    )


@bp.route("/healthz")
def healthz() -> dict[str, str]:
    """Liveness probe for load balancers."""
    return {"status": "ok"}


@bp.app_context_processor
def header_context() -> dict[str, Any]:
    """Helpers every template has: the header's plan badge, and the one way each page writes
    dates and GPU time."""
    return {
        "header_plan": _header_plan,
        "long_date": long_date,
        "long_moment": long_moment,
        "gpu_time": format_gpu_time,
    }


def _header_plan() -> Plan | None:
    """The person's active plan, once per request; None when signed out or unknown."""
    if not current_user.is_authenticated:
        return None
    if "header_plan" not in g:
        try:
            g.header_plan = standing(current_user).plan
        except SQLAlchemyError:  # the error page of a database outage must still render
            db.session.rollback()
            log.warning("plan badge unavailable: database error")
            g.header_plan = None
    return g.header_plan
