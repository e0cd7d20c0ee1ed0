"""Dataset pages and the JSON calls the uploader makes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.datasets import services
from app.datasets.forms import DatasetForm
from app.datasets.models import DatasetItem
from app.extensions import get_settings, get_storage

bp = Blueprint("datasets", __name__)


@bp.route("/datasets", methods=["GET", "POST"])
@login_required
def index() -> Response | str:
    """List datasets and create a new one."""
    form = DatasetForm()
    if form.validate_on_submit():
        dataset = services.create_dataset(
            current_user, form.name.data or "", form.trigger_word.data
        )
        return redirect(url_for("datasets.show", dataset_id=dataset.id))
    datasets = services.list_datasets(current_user)
    return render_template("datasets/index.html", datasets=datasets, form=form)


@bp.route("/datasets/<int:dataset_id>")
@login_required
def show(dataset_id: int) -> str:
    """One dataset: its items and the uploader."""
    dataset = services.get_dataset(current_user, dataset_id)
    return render_template(
        "datasets/show.html", dataset=dataset, counts=services.item_counts(dataset)
    )


@bp.route("/datasets/<int:dataset_id>/delete", methods=["POST"])
@login_required
def delete(dataset_id: int) -> Response:
    """Delete a dataset with all its files."""
    dataset = services.get_dataset(current_user, dataset_id)
    services.delete_dataset(dataset)
    flash(f"Deleted “{dataset.name}” and its files.", "info")
    return redirect(url_for("datasets.index"))


@bp.route("/datasets/<int:dataset_id>/items/<int:item_id>/thumbnail")
@login_required
def thumbnail(dataset_id: int, item_id: int) -> Response:
    """A short-lived link to the item's thumbnail."""
    item = services.get_item(current_user, dataset_id, item_id)
    if not item.thumbnail_key:
        abort(404)
    url = get_storage().presign_download(item.thumbnail_key, 300, f"{item.id}.webp")
    return redirect(url)


@bp.route("/api/datasets/<int:dataset_id>/uploads", methods=["POST"])
@login_required
def start_upload(dataset_id: int) -> tuple[Response, int]:
    """Presign where the browser sends one file."""
    dataset = services.get_dataset(current_user, dataset_id)
    body = _json_body()
    filename, size = body.get("filename"), body.get("size")
    if not isinstance(filename, str) or not isinstance(size, int) or isinstance(size, bool):
        return jsonify(error="Send the file's name (text) and size (bytes)."), 422
    try:
        target = services.start_upload(current_user, dataset, filename, size)
    except services.DatasetError as exc:
        return jsonify(error=str(exc)), 422
    return jsonify(
        item=_item_json(target.item),
        method=target.method,
        urls=target.urls,
        part_size=target.part_size,
        expires_in=get_settings().upload_url_expiry_s,
    ), 201


@bp.route("/api/datasets/<int:dataset_id>/uploads/<int:item_id>/complete", methods=["POST"])
@login_required
def complete_upload(dataset_id: int, item_id: int) -> tuple[Response, int]:
    """The browser says the bytes are there: check and queue ingest."""
    item = services.get_item(current_user, dataset_id, item_id)
    etags = _json_body().get("etags", [])
    if not isinstance(etags, list) or not all(isinstance(e, str) for e in etags):
        return jsonify(error="etags must be a list of the parts' ETag headers."), 422
    try:
        services.complete_upload(item, etags)
    except services.DatasetError as exc:
        return jsonify(error=str(exc)), 422
    return jsonify(item=_item_json(item)), 200


@bp.route("/api/datasets/<int:dataset_id>/items")
@login_required
def items(dataset_id: int) -> Response:
    """Every item with its status, for live updates of the dataset page."""
    dataset = services.get_dataset(current_user, dataset_id)
    return jsonify(items=[_item_json(item) for item in dataset.items])


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "Send a JSON object.")
    return body


def _item_json(item: DatasetItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "filename": item.filename,
        "status": item.status,
        "reject_reason": item.reject_reason,
        "size": item.size_bytes,
        "width": item.width,
        "height": item.height,
        "caption": item.caption,
    }
