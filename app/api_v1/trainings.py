"""/api/v1 trainings: start (with Idempotency-Key), list, get, cancel, continue, and
short-lived download URLs for the run's files. The rules are app.trainings.services'."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Response, jsonify, request, url_for

from app.api_v1 import idempotency
from app.api_v1.auth import current_caller
from app.api_v1.blueprint import bp
from app.api_v1.parsing import Invalid, int_field, json_body, page_body, page_request, text_field
from app.datasets.services import get_dataset
from app.db_types import utcnow
from app.extensions import get_settings
from app.trainings import services
from app.trainings.families import FAMILIES
from app.trainings.models import TrainingRun
from app.trainings.presets import default_preset
from app.trainings.run_json import PARAMETERS, training_json, when

Reply = tuple[Response, int]
CREATE_FIELDS = (
    "dataset_id", "family", "preset", "parameters", "name", "webhook", "webhook_events_filter",
    "start_from",
)  # fmt: skip
MAX_NAME_CHARS = 120


@bp.route("/trainings")
def list_trainings() -> Response:
    """The caller's runs, newest first, a page at a time (progress as last stored)."""
    page = page_request()
    rows = services.list_runs(current_caller().user, page.last_id, page.limit + 1)
    return jsonify(page_body(rows, page, training_json))


@bp.route("/trainings", methods=["POST"])
def create_training() -> Reply:
    """Start a run from a dataset, a family and a preset and/or parameters; `webhook` and
    `webhook_events_filter` (checked by app.webhooks) get the run's events."""
    body = json_body(CREATE_FIELDS)
    errors: dict[str, str] = {}
    dataset_id = int_field(body, "dataset_id", errors, required=True)
    family = text_field(body, "family", errors, required=True) or ""
    preset = text_field(body, "preset", errors)
    name = text_field(body, "name", errors) or ""
    if len(name) > MAX_NAME_CHARS:
        errors["name"] = f"Keep the name under {MAX_NAME_CHARS} characters."
    params = _parameters(body.get("parameters"), errors)
    if errors:
        raise Invalid(errors)
    user = current_caller().user
    dataset = get_dataset(user, dataset_id or 0)
    if preset is None and family in FAMILIES:
        preset = default_preset(family)

    def create(record: Any) -> TrainingRun:
        return services.start_run(
            user, dataset, family, preset or "", params, name,
            webhook=body.get("webhook"), webhook_events_filter=body.get("webhook_events_filter"),
            before_commit=record, start_from=body.get("start_from"),
        )  # fmt: skip

    return _created(body, create)


@bp.route("/trainings/<int:run_id>")
def get_training(run_id: int) -> Response:
    """One run with its live progress."""
    run = services.get_run(current_caller().user, run_id)
    return jsonify(training_json(run, services.live_status(run)))


@bp.route("/trainings/<int:run_id>/cancel", methods=["POST"])
def cancel_training(run_id: int) -> Reply:
    """Stop a run: a queued one at once, a running one at its next step."""
    run = services.get_run(current_caller().user, run_id)
    services.cancel_run(run)
    return jsonify(training_json(run, services.live_status(run))), 202


@bp.route("/trainings/<int:run_id>/continue", methods=["POST"])
def continue_training(run_id: int) -> Reply:
    """A new run that resumes from this one's last checkpoint for `extra_steps` more."""
    user = current_caller().user
    run = services.get_run(user, run_id)
    body = json_body(("extra_steps",))
    errors: dict[str, str] = {}
    extra = int_field(body, "extra_steps", errors, required=True)  # range: continue_run's
    if errors:
        raise Invalid(errors)

    def create(record: Any) -> TrainingRun:
        return services.continue_run(user, run, extra or 0, record)

    return _created(body, create)


@bp.route("/trainings/<int:run_id>/artifacts")
def list_artifacts(run_id: int) -> Response:
    """Short-lived download URLs for the LoRA files, checkpoints and samples."""
    run = services.get_run(current_caller().user, run_id)
    expiry = get_settings().download_url_expiry_s
    expires_at = when(utcnow() + timedelta(seconds=expiry))
    files = [
        {
            "kind": kind,
            "name": name,
            "filename": services.download_filename(run, kind, name),
            "url": services.download_url(run, kind, name),
            "expires_at": expires_at,
        }
        for kind, name in services.list_artifacts(run)
    ]
    return jsonify(data=files, expires_in=expiry)


def _created(body: dict[str, Any], create: idempotency.Create) -> Reply:
    """201 with the new run, or the run an earlier request with this Idempotency-Key made."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and (problem := idempotency.key_problem(key)):
        raise Invalid({"Idempotency-Key": problem})
    fingerprint = idempotency.fingerprint(request.method, request.path, body)
    run, replayed = idempotency.run_once(current_caller().user, key, fingerprint, create)
    response = jsonify(training_json(run, services.live_status(run)))
    response.headers["Location"] = url_for(".get_training", run_id=run.id)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 201


def _parameters(raw: Any, errors: dict[str, str]) -> dict[str, Any]:
    """The `parameters` object; names the engine does not take are refused, not ignored."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors["parameters"] = "Must be an object of parameter name -> value."
        return {}
    for name in sorted(set(raw) - set(PARAMETERS)):
        errors[f"parameters.{name}"] = "Unknown parameter."
    return raw
