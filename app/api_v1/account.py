"""/api/v1 usage (this period's GPU time and storage) and models (families, presets, limits)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from app.api_v1.auth import current_caller
from app.api_v1.blueprint import bp
from app.billing.services import standing
from app.datasets.services import storage_allowance, storage_used
from app.extensions import get_settings
from app.trainings.families import FAMILIES, FamilyFacts, StepSpeed, step_speed
from app.trainings.params import (
    CHOICE_LABELS,
    CHOICES,
    FIELDS,
    MAX_PROMPT_CHARS,
    MAX_SAMPLE_PROMPTS,
)
from app.trainings.presets import PRESETS, preset_defaults, presets_for
from app.trainings.quota import period_quota
from app.trainings.run_json import when
from app.trainings.services import active_run_count, allowed_families


@bp.route("/usage")
def usage() -> Response:
    """GPU seconds allowed, used, held by unfinished runs and left this period; storage."""
    user = current_caller().user
    account = standing(user)
    plan, quota = account.plan, period_quota(account)
    return jsonify(
        plan=None if plan is None else {
            "name": plan.name, "label": plan.label, "gpu_seconds": plan.gpu_seconds,
            "storage_bytes": plan.storage_bytes, "concurrent_runs": plan.concurrent_runs,
            "overage": plan.overage,
        },
        period={"start": when(quota.period_start), "end": when(quota.period_end)},
        gpu_seconds={
            "allowance": quota.allowance_s, "used": round(quota.used_s, 1),
            "reserved": quota.reserved_s, "left": round(quota.left_s, 1),
            "over": round(quota.over_s, 1),
        },
        active_trainings=active_run_count(user),
        storage={
            "used_bytes": storage_used(user), "allowance_bytes": storage_allowance(user, account),
        },
    )  # fmt: skip


@bp.route("/models")
def models() -> Response:
    """The families this service trains, whether the caller's plan has them, presets, limits."""
    user = current_caller().user
    account = standing(user)
    usable = set(allowed_families(account)) if account.plan is not None else set()
    enabled = [name for name in get_settings().enabled_families if name in FAMILIES]
    return jsonify(
        data=[_family_json(FAMILIES[name], name in usable) for name in enabled],
        parameters=_parameter_limits(),
    )


def _family_json(facts: FamilyFacts, available: bool) -> dict[str, Any]:
    video = {"fps": facts.fps, "max_frames": facts.max_frames, "frame_step": facts.frame_step}
    return {
        "name": facts.name,
        "label": facts.label,
        "media": facts.media,
        "notes": facts.notes,
        "available": available,
        "resolution": {
            "default": facts.default_resolution,
            "min": facts.min_resolution,
            "max": facts.max_resolution,
            "multiple": facts.resolution_multiple,
        },
        "video": video if facts.is_video else None,
        "estimate": _speed_json(step_speed(facts.name)),
        "presets": [
            {
                "name": preset,
                "description": PRESETS[preset],
                "parameters": preset_defaults(preset, facts.name),
            }
            for preset in presets_for(facts.name)
        ],
    }


def _speed_json(speed: StepSpeed) -> dict[str, Any]:
    return {
        "startup_seconds": round(speed.startup_seconds, 2),
        "seconds_per_step": round(speed.seconds_per_step, 5),
        "measured_runs": speed.measured_runs,
    }


def _parameter_limits() -> dict[str, Any]:
    limits: dict[str, Any] = {
        name: {
            "type": "integer" if spec.kind is int else "number",
            "minimum": spec.low,
            "maximum": spec.high,
            "label": spec.label,
        }
        for name, spec in FIELDS.items()
    }
    for name, choices in CHOICES.items():
        limits[name] = {"type": "string", "enum": list(choices), "label": CHOICE_LABELS[name]}
    limits["resolution"] = {"type": "integer", "label": "Resolution (see each model)"}
    limits["sample_prompts"] = {
        "type": "array",
        "max_items": MAX_SAMPLE_PROMPTS,
        "max_length": MAX_PROMPT_CHARS,
        "label": "Sample prompts",
    }
    return limits
