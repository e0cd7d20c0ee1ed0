"""Run pages: start, watch, cancel, download."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.datasets.services import get_dataset, list_datasets
from app.trainings import services
from app.trainings.families import FAMILIES
from app.trainings.forms import NewRunForm

bp = Blueprint("trainings", __name__)


@bp.route("/runs")
@login_required
def index() -> str:
    """All of the person's runs."""
    return render_template("trainings/index.html", runs=services.list_runs(current_user))


@bp.route("/runs/new", methods=["GET", "POST"])
@login_required
def new() -> Response | tuple[str, int]:
    """The new-run form; on success the run is queued and the run page opens."""
    form = NewRunForm()
    form.dataset_id.choices = [(d.id, d.name) for d in list_datasets(current_user)]
    form.family.choices = [(n, FAMILIES[n].label) for n in services.allowed_families()]
    if form.validate_on_submit():
        try:
            dataset = get_dataset(current_user, form.dataset_id.data)
            run = services.start_run(current_user, dataset, form.family.data or "", form.data)
        except services.RunError as exc:
            form.form_errors.append(str(exc))
        else:
            flash("Your run is queued.", "success")
            return redirect(url_for("trainings.show", run_id=run.id))
    status = 422 if form.errors or form.form_errors else 200
    return render_template("trainings/new.html", form=form), status


@bp.route("/runs/<int:run_id>")
@login_required
def show(run_id: int) -> str:
    """A run's status, progress and downloads."""
    run = services.get_run(current_user, run_id)
    return render_template("trainings/show.html", run=run, progress=services.live_progress(run))


@bp.route("/api/runs/<int:run_id>")
@login_required
def status(run_id: int) -> Response:
    """The run's live progress as JSON, polled by the run page."""
    return jsonify(services.live_progress(services.get_run(current_user, run_id)))


@bp.route("/runs/<int:run_id>/cancel", methods=["POST"])
@login_required
def cancel(run_id: int) -> Response:
    """Ask the run to stop."""
    run = services.get_run(current_user, run_id)
    try:
        services.cancel_run(run)
    except services.RunError as exc:
        flash(str(exc), "error")
    else:
        flash("Cancelling: the run stops at its next step.", "info")
    return redirect(url_for("trainings.show", run_id=run.id))


@bp.route("/runs/<int:run_id>/download/<kind>")
@login_required
def download(run_id: int, kind: str) -> Response:
    """Redirect to a short-lived attachment URL, after the ownership check."""
    run = services.get_run(current_user, run_id)
    return redirect(services.download_url(run, kind))
