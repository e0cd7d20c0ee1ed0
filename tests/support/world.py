"""A small world of owned objects to aim at: one person with one of everything, really stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask

from app.accounts.models import User
from app.apikeys.services import create_key
from app.datasets.models import Dataset, DatasetItem
from app.db_types import utcnow
from app.extensions import db, get_storage
from app.privacy.models import DataExport
from app.trainings.models import Generation, TrainingRun
from app.webhooks.models import EVENT_TYPES, WebhookEndpoint
from app.webhooks.signing import new_secret
from tests.support.accounts import activate_plan, seed_user
from tests.support.media_files import noise_png_bytes


@dataclass
class World:
    """Everything one person owns, by id, plus the names route parameters need."""

    user_id: int
    dataset_id: int
    item_id: int  # ready, with an original and a thumbnail in storage
    uploading_item_id: int  # an upload in flight
    run_id: int  # succeeded, with a LoRA, a checkpoint and a sample
    generation_id: int
    export_id: int
    endpoint_id: int  # a webhook endpoint
    key_id: int  # an API key (read and write) of the owner
    api_key: str  # its secret, as a script holds it
    sample_name: str = "sample-0001.png"
    media_name: str = "image-0.png"

    def path_values(self) -> dict[str, Any]:
        """Values for every path parameter in the URL map."""
        return {
            "dataset_id": self.dataset_id,
            "item_id": self.item_id,
            "run_id": self.run_id,
            "generation_id": self.generation_id,
            "export_id": self.export_id,
            "endpoint_id": self.endpoint_id,
            "key_id": self.key_id,
            "part_number": 1,
            "kind": "lora",
            "name": self.sample_name,
            "token": "not-a-valid-token",
            "filename": "css/attune.css",
        }


def build_world(app: Flask, email: str = "owner@example.com") -> World:
    """Seed an owner on the Pro plan with one of everything, each object really stored."""
    user_id = seed_user(app, email)
    activate_plan(app, email, "pro")
    with app.app_context():
        storage, now = get_storage(), utcnow()
        dataset = Dataset(user_id=user_id, name="Owned", trigger_word="sks")
        db.session.add(dataset)
        db.session.flush()
        prefix = dataset.storage_prefix()
        item = DatasetItem(
            dataset_id=dataset.id, filename="a.png", content_type="image/png",
            media_kind="image", size_bytes=100, status="ready", width=32, height=32,
            storage_key=f"{prefix}items/a/original.png", thumbnail_key=f"{prefix}items/a/t.webp",
        )  # fmt: skip
        pending = DatasetItem(
            dataset_id=dataset.id, filename="b.png", content_type="image/png",
            media_kind="image", size_bytes=100, storage_key="",
            upload_key=f"{prefix}items/b/upload/original.png",
        )  # fmt: skip
        db.session.add_all([item, pending])
        storage.put(item.storage_key, noise_png_bytes(), "image/png")
        storage.put(item.thumbnail_key or "", b"RIFF", "image/webp")
        run = TrainingRun(
            user_id=user_id, dataset_id=dataset.id, name="Owned run", family="tiny-sd",
            preset="character", config={"steps": 4, "family": "tiny-sd"}, total_steps=4,
            queue="gpu-cpu", status="succeeded", step=4, finished_at=now,
        )  # fmt: skip
        db.session.add(run)
        db.session.flush()
        run_prefix = run.storage_prefix()
        run.artifacts = {
            "lora": f"{run_prefix}lora.safetensors",
            "comfyui": f"{run_prefix}comfy.safetensors",
            "samples": [f"{run_prefix}samples/sample-0001.png"],
            "checkpoints": {"4": f"{run_prefix}checkpoints/step-4.zip"},
            "loss_curve": [[1, 0.5], [4, 0.25]],
        }
        for key in (run.artifacts["lora"], run.artifacts["comfyui"], run.artifacts["samples"][0]):
            storage.put(key, b"x", "application/octet-stream")
        generation = Generation(
            user_id=user_id, run_id=run.id, prompt="a sks", strength=1.0, seed=1,
            status="succeeded", media_keys=[f"{run_prefix}generations/1/image-0.png"],
        )  # fmt: skip
        export = DataExport(
            user_id=user_id, status="ready", storage_key=f"users/{user_id}/exports/1/e.zip",
            finished_at=now, expires_at=now + timedelta(days=7),
        )  # fmt: skip
        endpoint = WebhookEndpoint(
            user_id=user_id, url="https://hooks.example.com/attune", event_types=list(EVENT_TYPES),
            secret=new_secret(),
        )  # fmt: skip
        db.session.add_all([generation, export, endpoint])
        storage.put(export.storage_key or "", b"PK", "application/zip")
        db.session.commit()
        key, secret = create_key(db.session.get_one(User, user_id), "Owned key", "read write")
        return World(
            user_id, dataset.id, item.id, pending.id, run.id, generation.id, export.id,
            endpoint.id, key.id, secret,
        )  # fmt: skip
