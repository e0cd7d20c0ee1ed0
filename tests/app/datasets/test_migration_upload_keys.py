"""Rows written before upload keys existed (revision 0005) keep working after 0006.

A ready item ingested back then has its checked bytes at its one key: it stays the item's data
(storage_key) and training copies it. An item still in flight has its key moved to upload_key,
so ingest copies it out of the browser's reach like any new upload.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text

from app import create_app
from app.accounts.models import User
from app.datasets.models import Dataset, DatasetItem
from app.db_types import utcnow
from app.extensions import db, get_storage
from app.trainings.models import TrainingRun
from jobs.datasets import ingest_item
from jobs.run_files import copy_dataset
from tests.support.apps import DATABASES, settings_overrides
from tests.support.media_files import noise_png_bytes

LEGACY_ITEM = text(
    "INSERT INTO dataset_items (dataset_id, filename, content_type, media_kind, size_bytes,"
    " storage_key, status, width, height, created_at)"
    " VALUES (:dataset_id, :filename, 'image/png', 'image', :size, :key, :status, :side, :side,"
    " CURRENT_TIMESTAMP)"
)


@pytest.fixture(params=DATABASES)
def app_at_0005(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The app on a fresh database migrated only as far as revision 0005."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'legacy.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database(
            f"legacy_{uuid.uuid4().hex[:12]}"
        )
    application = create_app(settings_overrides(request, url))
    with application.app_context():
        upgrade(revision="0005")
        yield application
        db.session.remove()
        db.engine.dispose()


def test_items_from_before_upload_keys_train_and_ingest(app_at_0005: Flask, tmp_path: Path) -> None:
    storage = get_storage()
    user = User(email="ada@example.com", name="Ada", adult_confirmed_at=utcnow())
    db.session.add(user)
    db.session.flush()
    dataset = Dataset(user_id=user.id, name="Old", trigger_word="sks")
    db.session.add(dataset)
    db.session.commit()
    prefix = f"{dataset.storage_prefix()}items/"
    ready, in_flight = noise_png_bytes((40, 40), seed=1), noise_png_bytes((24, 24), seed=2)
    for number, (status, data) in enumerate((("ready", ready), ("uploaded", in_flight)), 1):
        key = f"{prefix}{number}/original.png"  # the one key items had before revision 0006
        storage.put(key, data, "image/png")
        db.session.execute(
            LEGACY_ITEM,
            {"dataset_id": dataset.id, "filename": f"{status}.png", "size": len(data),
             "key": key, "status": status, "side": 40},
        )  # fmt: skip
    db.session.commit()

    upgrade()
    db.session.expire_all()
    old_ready, old_uploaded = db.session.query(DatasetItem).order_by(DatasetItem.id).all()
    assert (old_ready.storage_key, old_ready.upload_key) == (f"{prefix}1/original.png", None)
    assert (old_uploaded.storage_key, old_uploaded.upload_key) == ("", f"{prefix}2/original.png")

    assert ingest_item(old_uploaded) == "ready"
    assert old_uploaded.storage_key == f"{prefix}2/accepted/original.png"
    assert (old_uploaded.width, old_uploaded.height) == (24, 24)
    assert storage.stat(f"{prefix}2/original.png") is None  # the browser's key is gone

    run = TrainingRun(
        user_id=user.id, dataset_id=dataset.id, name="r", family="tiny-sd",
        config={"family": "tiny-sd", "steps": 2}, total_steps=2, queue="gpu-cpu",
    )  # fmt: skip
    db.session.add(run)
    db.session.commit()
    assert copy_dataset(run, tmp_path / "data") == 2
    copied = {path.name: path.read_bytes() for path in (tmp_path / "data").iterdir()}
    assert copied == {f"item-{old_ready.id}.png": ready, f"item-{old_uploaded.id}.png": in_flight}
