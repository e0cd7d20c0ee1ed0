"""Event bodies: {"type", "timestamp", "data"} as Standard Webhooks and Replicate shape them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.db_types import utcnow
from app.extensions import get_settings
from app.trainings.models import TrainingRun


def event_body(event_type: str, data: dict[str, Any], now: datetime | None = None) -> str:
    """The JSON text of one event, exactly as it is signed and sent."""
    envelope = {"type": event_type, "timestamp": _iso(now or utcnow()), "data": data}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def run_data(run: TrainingRun, live: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run as the API shows it, with `live` step/loss/ETA when the event carries them."""
    base = get_settings().base_url.rstrip("/")
    data: dict[str, Any] = {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "family": run.family,
        "preset": run.preset,
        "dataset_id": run.dataset_id,
        "attempt": run.attempts,
        "step": run.step,
        "total_steps": run.total_steps,
        "loss": run.loss,
        "eta_seconds": None,
        "error": run.error,
        "platform_fault": run.platform_fault,
        "used_gpu_seconds": round(run.used_gpu_seconds or 0.0, 1),
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "urls": {"get": f"{base}/api/runs/{run.id}", "web": f"{base}/runs/{run.id}"},
        "artifacts": artifact_links(run) if run.is_finished else {},
    }
    for key in ("step", "loss", "eta_seconds"):
        if live and live.get(key) is not None:
            data[key] = live[key]
    return data


def artifact_links(run: TrainingRun) -> dict[str, Any]:
    """Where each of the run's files is fetched (after sign-in; each answers with a
    short-lived download URL), rather than URLs that would expire while a delivery retries."""
    base = f"{get_settings().base_url.rstrip('/')}/runs/{run.id}/download"
    artifacts = run.artifacts or {}
    links: dict[str, Any] = {
        kind: f"{base}/{kind}" for kind in ("lora", "comfyui") if kind in artifacts
    }
    links["checkpoints"] = {
        step: f"{base}/checkpoint/{step}" for step in (artifacts.get("checkpoints") or {})
    }
    links["samples"] = [
        f"{base}/sample/{key.rsplit('/', 1)[-1]}" for key in artifacts.get("samples", [])
    ]
    return links


def ping_data(endpoint_id: int) -> dict[str, Any]:
    """The body of the "send test event" button."""
    return {"endpoint_id": endpoint_id, "message": "A test event from Attune."}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None
