"""Run pages and JSON: start, estimate, watch, cancel, continue, download."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.billing.services import Standing, standing
from app.billing.usage import run_gpu_seconds
from app.datasets.previews import resolution_hint
from app.datasets.services import get_dataset, list_datasets
from app.trainings import generations, services
from app.trainings.families import FAMILIES, base_model_source
from app.trainings.forms import NewRunForm
from app.trainings.presets import PRESET_LIMITS, PRESETS, preset_defaults
from catalogue.prompts import TRIGGER_RULE

bp = Blueprint("trainings", __name__)


@bp.route("/runs")
@login_required
def index() -> str:
    """All of the person's runs."""
    return render_template("trainings/index.html", runs=services.list_runs(current_user))


def _new_form(account: Standing) -> NewRunForm:
    form = NewRunForm()
    form.dataset_id.choices = [(d.id, d.name) for d in list_datasets(current_user)]
    form.family.choices = [(n, FAMILIES[n].label) for n in services.allowed_families(account)]
    form.preset.choices = list(PRESETS.items())
    form.start_from.choices = [("", "A fresh LoRA")] + [
        (str(run.id), f"{run.name} · {FAMILIES[run.family].label} · rank {run.config.get('rank')}")
        for run in services.warm_start_sources(current_user)
        if run.family in FAMILIES
    ]
    return form


@bp.route("/runs/new", methods=["GET", "POST"])
@login_required
def new() -> Response | tuple[str, int]:
    """The new-run form; on success the run is queued and its page opens."""
    account = standing(current_user)
    form = _new_form(account)
    if request.method == "GET":
        _prefill(form)
    elif form.validate_on_submit():
        try:
            dataset = get_dataset(current_user, form.dataset_id.data)
            run = services.start_run(
                current_user, dataset, form.family.data or "", form.preset.data or "",
                form.params(), form.name.data or "", account=account,
                start_from=form.start_from.data,
            )  # fmt: skip
        except services.ParamsError as exc:
            for field, message in exc.errors.items():
                getattr(form, field).errors = [*getattr(form, field).errors, message]
        except services.RunError as exc:
            form.form_errors.append(str(exc))
        else:
            flash("Your run is queued.", "success")
            return redirect(url_for("trainings.show", run_id=run.id))
    status = 400 if form.errors or form.form_errors else 200
    presets = _preset_table(account)
    hints = {name: resolution_hint(FAMILIES[name]) for name in presets}
    form.resolution.description = hints.get(form.family.data or "", "") or next(
        iter(hints.values()), ""
    )
    return render_template(
        "trainings/new.html",
        form=form,
        presets=presets,
        resolution_hints=hints,
        preset_limits=PRESET_LIMITS,
        trigger_rule=TRIGGER_RULE,
    ), status


def _prefill(form: NewRunForm) -> None:
    """Duplicate-with-edits: ?from=<run id> copies that run's choices into the form."""
    source = request.args.get("from", type=int)
    if source is None:
        form.dataset_id.data = request.args.get("dataset", type=int)
        return
    run = services.get_run(current_user, source)
    form.dataset_id.data, form.family.data, form.preset.data = (
        run.dataset_id,
        run.family,
        run.preset,
    )
    form.name.data = f"{run.name} (copy)"
    form.start_from.data = str(run.start_from_run_id or "")
    for name in NewRunForm.ADVANCED:
        value = run.config.get(name)
        if value is not None:
            getattr(form, name).data = "\n".join(value) if isinstance(value, list) else str(value)


def _preset_table(account: Standing) -> dict[str, dict[str, dict[str, Any]]]:
    """Each family's preset defaults, for the form's script to fill in."""
    from app.trainings.presets import presets_for

    return {
        family: {preset: preset_defaults(preset, family) for preset in presets_for(family)}
        for family in services.allowed_families(account)
    }


@bp.route("/api/runs", methods=["POST"])
@login_required
def api_start() -> tuple[Response, int]:
    """Start a run from JSON: {dataset_id, family, preset, name?, params: {...}, webhook?,
    webhook_events_filter?}."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="Send a JSON object."), 400
    dataset_id, params = body.get("dataset_id"), body.get("params", {})
    if not isinstance(dataset_id, int) or not isinstance(params, dict):
        return jsonify(error="dataset_id (number) and params (object) are required."), 400
    try:
        run = services.start_run(
            current_user, get_dataset(current_user, dataset_id), str(body.get("family", "")),
            str(body.get("preset", "character")), params, str(body.get("name", "")),
            webhook=body.get("webhook"), webhook_events_filter=body.get("webhook_events_filter"),
            start_from=body.get("start_from"),
        )  # fmt: skip
    except services.ParamsError as exc:
        return jsonify(error=str(exc), errors=exc.errors), 400
    except services.UnusableFilesError as exc:
        return jsonify(error=str(exc), files=exc.files), 409
    except services.RunError as exc:
        return jsonify(error=str(exc)), 409
    return jsonify(services.live_progress(run)), 201


@bp.route("/api/runs/estimate")
@login_required
def api_estimate() -> tuple[Response, int]:
    """Estimated GPU seconds for a family and step count, and what they leave of the quota."""
    family, steps = request.args.get("family", ""), request.args.get("steps", type=int)
    if family not in FAMILIES or steps is None or not 1 <= steps <= 20_000:
        return jsonify(error="Give a known family and steps between 1 and 20000."), 400
    return jsonify(services.estimate(standing(current_user), family, steps)), 200


@bp.route("/runs/<int:run_id>")
@login_required
def show(run_id: int) -> str:
    """A run's status, progress, samples, log and downloads."""
    run = services.get_run(current_user, run_id)
    return render_template(
        "trainings/show.html",
        run=run,
        progress=services.live_progress(run),
        family=FAMILIES[run.family],
        base_model=base_model_source(run.family),
        download_label=services.download_label,
        diffusers_loads=services.diffusers_loads(run),
        continue_refusal=services.continue_refusal(run),
        started_from=services.started_from(run),
        generations=[generations.generation_json(g) for g in generations.list_generations(run)],
        try_it_seconds=run_gpu_seconds(run.id, "generation"),
    )


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
        flash("Cancelling: the run stops within seconds and keeps its last checkpoint.", "info")
    return redirect(url_for("trainings.show", run_id=run.id))


@bp.route("/runs/<int:run_id>/continue", methods=["POST"])
@login_required
def continue_(run_id: int) -> Response:
    """Train a finished run for more steps, from its last checkpoint."""
    run = services.get_run(current_user, run_id)
    try:
        extra = int(request.form.get("extra_steps", ""))
        new_run = services.continue_run(current_user, run, extra)
    except ValueError:
        flash("Give the number of extra steps as a whole number.", "error")
    except services.ParamsError as exc:
        flash(" ".join(exc.errors.values()), "error")
    except services.RunError as exc:
        flash(str(exc), "error")
    else:
        return redirect(url_for("trainings.show", run_id=new_run.id))
    return redirect(url_for("trainings.show", run_id=run.id))


@bp.route("/runs/<int:run_id>/generate", methods=["POST"])
@login_required
def generate(run_id: int) -> Response:
    """Try the LoRA: queue a render of a prompt at a strength."""
    run = services.get_run(current_user, run_id)
    try:
        strength = float(request.form.get("strength", "1.0"))
        seed = int(request.form.get("seed") or 0)
        generations.start_generation(
            current_user, run, request.form.get("prompt", ""), strength, seed
        )
    except ValueError:
        flash("Strength and seed must be numbers.", "error")
    except services.RunError as exc:
        flash(str(exc), "error")
    else:
        flash("Rendering: the images appear below in a moment.", "info")
    return redirect(url_for("trainings.show", run_id=run.id) + "#try-it")


@bp.route("/api/generations/<int:generation_id>")
@login_required
def generation_status(generation_id: int) -> Response:
    """A generation's status and files, polled by the run page."""
    generation = generations.get_generation(current_user, generation_id)
    return jsonify(generations.generation_json(generation))


@bp.route("/generations/<int:generation_id>/media/<name>")
@login_required
def generation_media(generation_id: int, name: str) -> Response:
    """Redirect to one generated file, after the ownership check."""
    generation = generations.get_generation(current_user, generation_id)
    return redirect(generations.media_url(generation, name))


@bp.route("/runs/<int:run_id>/download/<kind>")
@bp.route("/runs/<int:run_id>/download/<kind>/<name>")
@login_required
def download(run_id: int, kind: str, name: str | None = None) -> Response:
    """Redirect to a short-lived attachment URL, after the ownership check."""
    run = services.get_run(current_user, run_id)
    known = ("checkpoint", "sample", services.CAPTIONS_KIND)
    if kind not in known and not services.LORA_KIND.match(kind):
        abort(404)
    return redirect(services.download_url(run, kind, name))
