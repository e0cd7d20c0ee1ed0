"""Starting training runs as the run form's script does."""

from __future__ import annotations

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.web import api_headers


def start(client: FlaskClient, dataset_id: int, **params: object) -> TestResponse:
    """Start a tiny-sd character run on the dataset as the run form's script does."""
    body = {"dataset_id": dataset_id, "family": "tiny-sd", "preset": "character", "params": params}
    return client.post("/api/runs", json=body, headers=api_headers(client))
