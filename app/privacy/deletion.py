"""Deleting a group of a person's data and leaving a receipt; safe to crash and run again.

A receipt row is written first (status "pending"), then the stored objects are counted
("deleting"), then each unit (one dataset, one run's files, ...) is removed from storage with
every version and unfinished upload, and its rows updated, one commit per unit. A run that
dies anywhere resumes the same receipt; the receipt's group_key is unique, so a group never
gets two receipts.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app import object_keys
from app.datasets.models import Dataset
from app.db_types import utcnow
from app.extensions import db, get_storage
from app.privacy.models import DataExport, DeletionReceipt
from app.trainings.artifacts import CAPTIONS_KIND, RunArtifacts
from app.trainings.models import FINISHED_STATUSES, Generation, TrainingRun
from storage import Storage

# What each scope removes: retention groups, or what the person asked for.
SCOPES = ("media", "loras", "dataset", "run", "everything")
REASONS = {
    "subscription_ends": "Your subscription ends",
    "subscription_ended": "Your subscription ended",
    "no_subscription": "No subscription since the account was created",
    "requested": "You asked for it",
}
UNFINISHED = ("pending", "deleting")


class DeletionError(Exception):
    """The deletion cannot be done as asked; the message is for the person."""


@dataclass
class Unit:
    """Objects under one prefix plus the row change that goes with them."""

    prefix: str
    label: str | None  # None: a sweep for leftovers, named only in the count
    forget: Callable[[], None] = field(default=lambda: None)
    has_rows: bool = False


def group_key_for_request(user_id: int, scope: str, target_id: int | None) -> str:
    """A fresh key for a deletion the person asked for (each request is its own group)."""
    return f"request:{user_id}:{scope}:{target_id or 'all'}:{secrets.token_hex(6)}"


def open_receipt(
    user_id: int,
    scope: str,
    reason: str,
    group_key: str,
    target_id: int | None = None,
    now: datetime | None = None,
) -> DeletionReceipt:
    """The receipt for group_key, created as "pending" when it does not exist yet."""
    if scope not in SCOPES or reason not in REASONS:
        raise ValueError(f"unknown deletion scope or reason: {scope}, {reason}")
    existing = db.session.scalar(
        select(DeletionReceipt).where(DeletionReceipt.group_key == group_key)
    )
    if existing is not None:
        return existing
    units = plan_units(user_id, scope, target_id)
    receipt = DeletionReceipt(
        user_id=user_id,
        group_key=group_key,
        scope=scope,
        target_id=target_id,
        reason=reason,
        what=describe(units, scope),
        status="pending",
        requested_at=now or utcnow(),
    )
    db.session.add(receipt)
    try:
        db.session.commit()
    except IntegrityError:  # another run opened the same group a moment ago
        db.session.rollback()
        return db.session.scalars(
            select(DeletionReceipt).where(DeletionReceipt.group_key == group_key)
        ).one()
    return receipt


def execute_receipt(
    receipt: DeletionReceipt, now: datetime | None = None, storage: Storage | None = None
) -> DeletionReceipt:
    """Delete what the receipt covers and mark it done (or "empty" when nothing was there)."""
    storage = storage or get_storage()
    if receipt.status == "pending":
        units = plan_units(receipt.user_id, receipt.scope, receipt.target_id)
        receipt.object_count = count_objects(storage, [unit.prefix for unit in units])
        has_rows = any(unit.has_rows for unit in units)
        receipt.status = "deleting" if receipt.object_count or has_rows else "empty"
        db.session.commit()
    if receipt.status == "deleting":
        for unit in plan_units(receipt.user_id, receipt.scope, receipt.target_id):
            storage.delete_prefix(unit.prefix)
            unit.forget()
            db.session.commit()
        receipt.status, receipt.deleted_at = "done", now or utcnow()
        db.session.commit()
    return receipt


def count_objects(storage: Storage, prefixes: Iterable[str]) -> int:
    """How many stored objects lie under any of the prefixes (one listing per top folder)."""
    wanted = tuple(dict.fromkeys(prefixes))
    folders = {_top_folder(prefix) for prefix in wanted}
    roots = [f for f in folders if not any(f != o and f.startswith(o) for o in folders)]
    return sum(1 for root in roots for info in storage.list(root) if info.key.startswith(wanted))


def _top_folder(prefix: str) -> str:
    """users/5/datasets/3/ -> users/5/datasets/; users/5/ stays users/5/."""
    parts = prefix.split("/")
    return "/".join(parts[:3]) + "/" if len(parts) > 3 else prefix


def describe(units: list[Unit], scope: str) -> str:
    """The receipt's "what": the named units, in words."""
    names = [unit.label for unit in units if unit.label]
    if scope == "everything":
        names.insert(0, "All your stored files")
    text = "; ".join(names) or "Leftover files"
    return text if len(text) <= 500 else text[:497] + "..."


def plan_units(user_id: int, scope: str, target_id: int | None) -> list[Unit]:
    """The units still to delete for this scope, read fresh from the database."""
    if scope == "dataset":
        return _dataset_units(user_id, target_id)
    if scope == "run":
        return _run_units(user_id, "all", target_id)
    media = [
        *_dataset_units(user_id),
        Unit(object_keys.datasets_prefix(user_id), None),
        Unit(object_keys.media_prefix(user_id), None, lambda: _forget_generated_media(user_id)),
    ]
    if scope == "media":
        return [*media, *_run_units(user_id, "samples")]
    if scope == "loras":
        return _run_units(user_id, "all")
    if scope == "everything":
        return [
            *media,
            *_run_units(user_id, "all"),
            *_export_units(user_id),
            Unit(object_keys.user_prefix(user_id), None),
        ]
    raise ValueError(f"unknown deletion scope {scope!r}")


def _dataset_units(user_id: int, dataset_id: int | None = None) -> list[Unit]:
    query = select(Dataset).where(Dataset.user_id == user_id).order_by(Dataset.id)
    if dataset_id is not None:
        query = query.where(Dataset.id == dataset_id)
    return [
        Unit(ds.storage_prefix(), f"dataset “{ds.name}”", _deleter(ds), has_rows=True)
        for ds in db.session.scalars(query)
    ]


def _run_units(user_id: int, part: str, run_id: int | None = None) -> list[Unit]:
    """A unit per finished run: its samples only, or all its files (LoRAs, checkpoints...)."""
    query = select(TrainingRun).where(
        TrainingRun.user_id == user_id, TrainingRun.status.in_(FINISHED_STATUSES)
    )
    if run_id is not None:
        query = query.where(TrainingRun.id == run_id)
    units = []
    for run in db.session.scalars(query.order_by(TrainingRun.id)):
        artifacts = run.artifacts or {}
        if part == "samples":
            label = f"samples of run “{run.name}”" if artifacts.get("samples") else None
            prefix = object_keys.run_samples(run.storage_prefix())
            units.append(Unit(prefix, label, _artifact_clearer(run, "samples"), bool(label)))
            # captions.txt is the dataset's text, so it goes with the media, not the LoRAs.
            if captions := artifacts.get(CAPTIONS_KIND):
                label = f"captions trained by run “{run.name}”"
                units.append(Unit(captions, label, _artifact_clearer(run, CAPTIONS_KIND), True))
        else:
            label = f"LoRA files of run “{run.name}”" if artifacts else None
            units.append(Unit(run.storage_prefix(), label, _artifact_clearer(run), bool(label)))
    return units


def _export_units(user_id: int) -> list[Unit]:
    exports = db.session.scalars(
        select(DataExport).where(DataExport.user_id == user_id, DataExport.status == "ready")
    )
    units = []
    for export in exports:
        label = f"data export of {export.created_at:%Y-%m-%d}"
        units.append(Unit(export.storage_prefix(), label, _export_expirer(export), has_rows=True))
    return units


def _deleter(row: object) -> Callable[[], None]:
    return lambda: db.session.delete(row)


def _artifact_clearer(run: TrainingRun, only: str | None = None) -> Callable[[], None]:
    def clear() -> None:
        RunArtifacts(run).clear(only)

    return clear


def _export_expirer(export: DataExport) -> Callable[[], None]:
    def expire() -> None:
        export.status, export.storage_key = "expired", None

    return expire


def _forget_generated_media(user_id: int) -> None:
    """The person's try-it renders lose the keys of their deleted media."""
    db.session.execute(
        update(Generation).where(Generation.user_id == user_id).values(media_keys=[])
    )
