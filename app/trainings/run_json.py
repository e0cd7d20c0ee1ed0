"""A run as /api/v1 shows it (described in app/openapi.yaml); its webhook events carry the same.

Stable within v1: fields are added, never renamed or removed. Times are ISO 8601 in UTC; GPU
time is seconds. The other resources' shapes are app.api_v1.shapes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.extensions import get_settings
from app.trainings.models import TrainingRun
from app.trainings.params import CHOICES, FIELDS

# The engine settings a person chose or a preset filled in; the rest of the config is internal.
PARAMETERS = (*FIELDS, *CHOICES, "resolution", "sample_prompts")


def when(moment: datetime | None) -> str | None:
    """A time as ISO 8601 (UTC), or None."""
    return moment.isoformat() if moment is not None else None


def training_json(run: TrainingRun, live: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run: settings, progress (live from the worker when given), GPU time and files."""
    artifacts = run.artifacts or {}
    live = live or {"step": run.step, "loss": run.loss, "eta_seconds": None,
                    "queue_position": None}  # fmt: skip
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "dataset_id": run.dataset_id,
        "family": run.family,
        "preset": run.preset,
        "parent_id": run.parent_run_id,
        "start_from_id": run.start_from_run_id,
        "attempt": run.attempts,
        "parameters": {name: run.config[name] for name in PARAMETERS if name in run.config},
        "trigger_word": run.config.get("trigger_word") or None,
        "webhook": run.webhook,
        "webhook_events_filter": run.webhook_events_filter,
        "progress": {"total_steps": run.total_steps, **live},
        "error": run.error,
        "platform_fault": run.platform_fault,
        "cancel_requested": run.cancel_requested,
        "gpu_seconds": {
            "reserved": run.reserved_gpu_seconds,
            "used": round(run.used_gpu_seconds, 1),
        },
        "files": {
            "lora": "lora" in artifacts,
            "comfyui": "comfyui" in artifacts,
            "checkpoints": sorted(int(step) for step in artifacts.get("checkpoints") or {}),
            "samples": len(artifacts.get("samples", [])),
        },
        "created_at": when(run.created_at),
        "started_at": when(run.started_at),
        "finished_at": when(run.finished_at),
        "urls": training_urls(run),
    }


def training_urls(run: TrainingRun) -> dict[str, str]:
    """Where the run is read, cancelled and its files fetched (with a key), and its page."""
    base = get_settings().base_url.rstrip("/")
    api = f"{base}/api/v1/trainings/{run.id}"
    return {"get": api, "cancel": f"{api}/cancel", "artifacts": f"{api}/artifacts",
            "web": f"{base}/runs/{run.id}"}  # fmt: skip
