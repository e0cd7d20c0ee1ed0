"""The landing page and the signed-in dashboard."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.datasets.services import list_datasets
from app.trainings.services import list_runs

bp = Blueprint("pages", __name__)


@bp.route("/")
def index() -> Response | str:
    """Signed-in people go to their dashboard; others see what Attune is."""
    if current_user.is_authenticated:
        return redirect(url_for("pages.dashboard"))
    return render_template("index.html")


@bp.route("/dashboard")
@login_required
def dashboard() -> str:
    """Datasets and runs at a glance."""
    return render_template(
        "dashboard.html",
        datasets=list_datasets(current_user),
        runs=list_runs(current_user)[:10],
    )


@bp.route("/healthz")
def healthz() -> dict[str, str]:
    """Liveness probe for load balancers."""
    return {"status": "ok"}
