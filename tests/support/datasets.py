"""Datasets for app tests: made through the form, upload targets asked for as the upload page
does, and a dataset with one ready image as ingest would leave it."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.accounts.models import User
from app.datasets.models import Dataset, DatasetItem
from app.extensions import db
from tests.support.web import api_headers, csrf_token


def create_dataset(client: FlaskClient, name: str = "Cats", trigger: str = "sks_cat") -> int:
    """Create a dataset through the form and return its id."""
    token = csrf_token(client.get("/datasets").get_data(as_text=True))
    response = client.post(
        "/datasets", data={"csrf_token": token, "name": name, "trigger_word": trigger}
    )
    assert response.status_code == 302
    return int(response.headers["Location"].rsplit("/", 1)[-1])


def start_upload(client: FlaskClient, dataset_id: int, body: object) -> TestResponse:
    """Ask for an upload target as the upload page's script does."""
    return client.post(
        f"/api/datasets/{dataset_id}/uploads", json=body, headers=api_headers(client)
    )


def ready_dataset(app: Flask, email: str = "ada@example.com", trigger: str = "sks") -> int:
    """A dataset with one ready image, as ingest would leave it."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        dataset = Dataset(user_id=user.id, name="Cats", trigger_word=trigger)
        db.session.add(dataset)
        db.session.flush()
        db.session.add(
            DatasetItem(dataset_id=dataset.id, filename="a.png", content_type="image/png",
                        storage_key=f"{dataset.storage_prefix()}items/1/original.png",
                        status="ready", size_bytes=10, width=64, height=64)
        )  # fmt: skip
        db.session.commit()
        return dataset.id
