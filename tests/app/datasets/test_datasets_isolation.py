"""Another person's dataset and item ids give a 404 on every dataset route, and no URL is ever
signed for them. The routes are read from the app, so a new route is covered automatically."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from app.datasets.models import Dataset, DatasetItem
from app.extensions import db
from tests.support.datasets import create_dataset, start_upload
from tests.support.web import api_headers, csrf_token

BLUEPRINTS = ("datasets.", "datasets_api.")


def _dataset_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every dataset route that names a dataset."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(BLUEPRINTS) or "dataset_id" not in rule.arguments:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, rule.rule))
    return routes


def test_another_persons_ids_are_404_on_every_route(
    app: Flask, signed_in: FlaskClient, other_client: Callable[[str], FlaskClient]
) -> None:
    dataset_id = create_dataset(signed_in)
    big = start_upload(signed_in, dataset_id, {"filename": "big.mp4", "size": 40 * 1024**2})
    item_id = big.get_json()["item"]["id"]
    with app.app_context():
        item = db.session.get(DatasetItem, item_id)
        assert item is not None
        item.caption, item.thumbnail_key = "alice's caption", item.storage_key
        db.session.commit()

    eve = other_client("eve@example.com")
    own = create_dataset(eve, "Eve's")  # Eve's own dataset with Alice's item id: still a 404
    headers = api_headers(eve)
    token = csrf_token(eve.get("/datasets").get_data(as_text=True))
    routes = _dataset_routes(app)
    assert len(routes) >= 19
    for dataset in (dataset_id, own):
        for endpoint, method, rule in routes:
            if dataset == own and "item_id" not in rule:
                continue
            url = (
                rule.replace("<int:dataset_id>", str(dataset))
                .replace("<int:item_id>", str(item_id))
                .replace("<int:part_number>", "1")
            )
            if endpoint.startswith("datasets_api."):
                response = eve.open(url, method=method, json={"caption": "x"}, headers=headers)
            else:
                response = eve.open(url, method=method, data={"csrf_token": token, "name": "x"})
            assert response.status_code == 404, (endpoint, method, url, response.status_code)
            body = response.get_data(as_text=True) + response.headers.get("Location", "")
            assert "X-Amz-Signature" not in body and "/storage/local/" not in body, endpoint

    with app.app_context():  # nothing of Alice's changed
        dataset = db.session.get(Dataset, dataset_id)
        item = db.session.get(DatasetItem, item_id)
        assert dataset is not None and dataset.name == "Cats"
        assert item is not None and item.caption == "alice's caption"
        assert item.status == "uploading" and item.upload_id
    assert signed_in.get(f"/api/datasets/{dataset_id}/uploads/{item_id}/parts/1").status_code == 200
