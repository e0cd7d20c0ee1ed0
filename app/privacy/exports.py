"""Data exports: every row about a person as JSON plus their stored files, zipped into storage."""

from __future__ import annotations

import json
import tempfile
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Table, inspect, select

from app import object_keys
from app.accounts.models import Identity, User
from app.apikeys.models import ApiKey
from app.billing.models import GpuUsage, Subscription
from app.datasets.models import Dataset, DatasetItem
from app.datasets.portable import dataset_parts, dataset_zip_name, write_dataset_zip
from app.db_types import utcnow
from app.errors import NotFound
from app.extensions import db, get_settings, get_storage
from app.privacy.models import DataExport, DeletionReceipt
from app.privacy.notices import queue_export_ready
from app.privacy_policy import EXPORT_RETENTION
from app.queues import CPU_QUEUE, enqueue_task
from app.trainings.models import TrainingRun

EXPORT_TIMEOUT_S = 2 * 3600
# Never exported: secrets and server-side bookkeeping that would only help an attacker.
SECRET_COLUMNS = {
    "users": {"password_hash", "session_version"},
    "api_keys": {"key_hash"},
    "webhook_endpoints": {"secret", "previous_secret"},
    "webhook_run_secrets": {"secret", "previous_secret"},
}
SECTIONS: dict[str, type] = {
    "identities": Identity,
    "api_keys": ApiKey,  # name, prefix, scopes and dates; never the key or its hash
    "datasets": Dataset,
    "runs": TrainingRun,
    "subscriptions": Subscription,
    "gpu_usage": GpuUsage,
    "deletion_receipts": DeletionReceipt,
    "exports": DataExport,
}


class ExportError(Exception):
    """An export cannot be started or downloaded; the message is for the person."""


def request_export(user: User) -> DataExport:
    """Record a new export and queue the job that builds it (one at a time per person)."""
    pending = db.session.scalar(
        select(DataExport.id).where(
            DataExport.user_id == user.id, DataExport.status.in_(("queued", "building"))
        )
    )
    if pending is not None:
        raise ExportError(
            "An export is already being prepared. We will e-mail you when it is ready."
        )
    export = DataExport(user_id=user.id, status="queued")
    db.session.add(export)
    db.session.commit()
    queue_export_build(export)
    return export


def export_job_id(export_id: int) -> str:
    """The RQ job id of an export's build, so a sweeper can tell whether Redis still has it."""
    return f"export-{export_id}"


def queue_export_build(export: DataExport) -> None:
    """Queue (again) the job that builds `export`; building twice is safe."""
    enqueue_task(
        "jobs.exports.build",
        export.id,
        queue=CPU_QUEUE,
        timeout_s=EXPORT_TIMEOUT_S,
        job_id=export_job_id(export.id),
    )


def list_exports(user: User) -> list[DataExport]:
    """The person's exports, newest first."""
    query = select(DataExport).where(DataExport.user_id == user.id)
    return list(db.session.scalars(query.order_by(DataExport.id.desc())))


def export_download_url(user: User, export_id: int, now: datetime | None = None) -> str:
    """A short-lived attachment URL for one of the person's ready exports."""
    export = db.session.scalar(
        select(DataExport).where(DataExport.id == export_id, DataExport.user_id == user.id)
    )
    if export is None:
        raise NotFound(f"export {export_id}")
    if export.status != "ready" or not export.storage_key:
        raise ExportError("This export is not available (still being prepared, or expired).")
    if export.expires_at is not None and export.expires_at <= (now or utcnow()):
        raise ExportError("This export has expired. Request a new one.")
    filename = export.storage_key.rsplit("/", 1)[-1]
    expiry = get_settings().download_url_expiry_s
    return get_storage().presign_download(export.storage_key, expiry, filename)


def build_export(export_id: int) -> str:
    """Write the zip for export `export_id` and mark it ready; a finished export is skipped."""
    export = db.session.get(DataExport, export_id)
    if export is None or not export.is_pending:
        return "skipped"
    user = db.session.get(User, export.user_id)
    if user is None or user.deletion_requested_at is not None:
        return "skipped"
    export.status = "building"
    db.session.commit()
    now = utcnow()
    key = object_keys.child(export.storage_prefix(), f"attune-export-{now:%Y-%m-%d}.zip")
    try:
        with tempfile.TemporaryDirectory(prefix="attune-export-") as tmp:
            path = Path(tmp) / "export.zip"
            _write_zip(user, path)
            get_storage().upload_file(key, path, "application/zip")
            export.size_bytes = path.stat().st_size
    except Exception:
        db.session.rollback()
        export.status, export.error = "failed", "The export failed. Please request another."
        db.session.commit()
        raise
    export.status, export.storage_key = "ready", key
    export.finished_at, export.expires_at = now, now + EXPORT_RETENTION
    db.session.commit()
    queue_export_ready(user.id, user.email, user.name, export.expires_at)
    return "ready"


def account_data(user: User) -> dict[str, Any]:
    """Everything the database holds about the person, as JSON-ready values."""
    data: dict[str, Any] = {"exported_at": utcnow().isoformat(), "profile": _row(user)}
    for section, model in SECTIONS.items():
        query = select(model).where(model.user_id == user.id).order_by(model.id)  # type: ignore[attr-defined]
        data[section] = [_row(obj) for obj in db.session.scalars(query)]
    items = select(DatasetItem).join(Dataset).where(Dataset.user_id == user.id)
    by_dataset: dict[int, list[dict[str, Any]]] = {}
    for item in db.session.scalars(items.order_by(DatasetItem.id)):
        by_dataset.setdefault(item.dataset_id, []).append(_row(item))
    for dataset in data["datasets"]:
        dataset["items"] = by_dataset.get(dataset["id"], [])
    data.update(_other_tables(user.id))
    return data


def _other_tables(user_id: int) -> dict[str, list[dict[str, Any]]]:
    """Rows of any further table keyed by user_id (added by other features), so none is missed."""
    covered = {"users", "dataset_items"} | {model.__tablename__ for model in SECTIONS.values()}  # type: ignore[attr-defined]
    extra: dict[str, list[dict[str, Any]]] = {}
    for table in db.metadata.sorted_tables:
        if table.name in covered or "user_id" not in table.c:
            continue
        rows = db.session.execute(select(table).where(table.c.user_id == user_id)).mappings()
        extra[table.name] = [_plain(dict(row), table) for row in rows]
    return extra


def _row(obj: object) -> dict[str, Any]:
    mapper = inspect(obj.__class__)
    table: Table = mapper.local_table  # type: ignore[assignment]
    values = {attr.key: getattr(obj, attr.key) for attr in mapper.column_attrs}
    return _plain(values, table)


def _plain(values: dict[str, Any], table: Table) -> dict[str, Any]:
    hidden = SECRET_COLUMNS.get(table.name, set())
    return {key: _json_value(value) for key, value in values.items() if key not in hidden}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _write_zip(user: User, path: Path) -> None:
    """attune-export.json, each dataset as zips that upload again (datasets/), and every
    other stored object of the person (files/) except earlier exports and unchecked uploads."""
    storage, prefix = get_storage(), object_keys.user_prefix(user.id)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        text = json.dumps(account_data(user), indent=2, ensure_ascii=False, default=str)
        archive.writestr("attune-export.json", text, compress_type=zipfile.ZIP_DEFLATED)
        datasets = select(Dataset).where(Dataset.user_id == user.id).order_by(Dataset.id)
        for dataset in db.session.scalars(datasets):
            parts, taken = dataset_parts(dataset), set[str]()
            for number, items in enumerate(parts, 1):
                name = f"datasets/{dataset_zip_name(dataset, number, len(parts))}"
                with archive.open(name, "w", force_zip64=True) as out:
                    write_dataset_zip(items, out, taken)
        in_datasets = set(
            db.session.scalars(
                select(DatasetItem.storage_key)
                .join(Dataset)
                .where(Dataset.user_id == user.id, DatasetItem.status == "ready")
            )
        )
        for info in storage.list(prefix):
            relative = info.key[len(prefix) :]
            # Earlier exports, and bytes a browser sent that ingest has not (or not yet) taken
            # as an item's data: the export holds what the service keeps, the checked copies
            # (those of ready items are in their dataset's zip, under their own names).
            exported = info.key.startswith(object_keys.exports_prefix(user.id))
            if exported or object_keys.is_upload_key(info.key) or info.key in in_datasets:
                continue
            name, big = f"files/{relative}", info.size >= 2**31
            with (
                storage.open_stream(info.key) as stream,
                archive.open(name, "w", force_zip64=big) as out,
            ):
                for chunk in stream:
                    out.write(chunk)
