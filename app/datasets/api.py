"""JSON calls of the dataset page: the endpoints Uppy's AwsS3 plugin needs, items, captions
and the bucket preview. Every one is scoped to the signed-in person; other ids are a 404."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.datasets import captions, previews, services, uploads
from app.datasets.models import ITEM_STATUSES, DatasetItem
from app.extensions import get_settings, limiter
from storage import PartRef

bp = Blueprint("datasets_api", __name__, url_prefix="/api/datasets/<int:dataset_id>")

Reply = tuple[Response, int]


@bp.errorhandler(services.DatasetError)
def dataset_error(exc: services.DatasetError) -> Reply:
    """A broken rule is the person's to fix: 422 with the message."""
    return jsonify(error=str(exc)), 422


def _per_account() -> str:
    """Rate-limit key: the signed-in person, wherever they connect from."""
    return f"account:{current_user.get_id()}"


@bp.route("/uploads", methods=["POST"])
@login_required
@limiter.limit("300 per minute", key_func=_per_account)
def start_upload(dataset_id: int) -> Reply:
    """Check quota and type, then presign a single PUT or start a multipart upload."""
    dataset = services.get_dataset(current_user, dataset_id)
    body = _json_body()
    filename, size = body.get("filename"), body.get("size")
    relative_path = body.get("relative_path")
    if not isinstance(filename, str) or not isinstance(size, int) or isinstance(size, bool):
        return jsonify(error="Send the file's name (text) and size (bytes)."), 422
    if relative_path is not None and not isinstance(relative_path, str):
        return jsonify(error="relative_path must be text."), 422
    target = uploads.start_upload(
        current_user, dataset, filename, size, relative_path, body.get("caption")
    )
    return _target_json(target), 201


@bp.route("/uploads/<int:item_id>/target")
@login_required
def resume_upload(dataset_id: int, item_id: int) -> Reply:
    """Fresh URLs for an item still uploading, for a page that reloaded mid-upload."""
    item = services.get_item(current_user, dataset_id, item_id)
    return _target_json(uploads.resume_upload(item)), 200


def _target_json(target: uploads.UploadTarget) -> Response:
    item = target.item
    return jsonify(
        item=item_json(item),
        method=target.method,
        key=str(item.id),  # what Uppy hands back to the calls below; never an object key
        uploadId=item.upload_id,
        urls=target.urls,
        part_size=target.part_size,
        content_type=item.content_type,
        expires_in=get_settings().upload_url_expiry_s,
    )


@bp.route("/uploads/<int:item_id>/parts/<int:part_number>")
@login_required
def sign_part(dataset_id: int, item_id: int, part_number: int) -> Reply:
    """A fresh presigned URL for one part (Uppy's signPart)."""
    item = services.get_item(current_user, dataset_id, item_id)
    url = uploads.sign_part(item, part_number)
    return jsonify(url=url, expires_in=get_settings().upload_url_expiry_s), 200


@bp.route("/uploads/<int:item_id>/parts")
@login_required
def list_parts(dataset_id: int, item_id: int) -> Reply:
    """The parts storage holds so far (Uppy's listParts, for resuming)."""
    item = services.get_item(current_user, dataset_id, item_id)
    parts = uploads.list_parts(item)
    return jsonify(
        parts=[{"PartNumber": p.number, "ETag": p.etag, "Size": p.size} for p in parts]
    ), 200


@bp.route("/uploads/<int:item_id>/complete", methods=["POST"])
@login_required
def complete_upload(dataset_id: int, item_id: int) -> Reply:
    """The bytes are there: join the parts, check the size and queue ingest."""
    item = services.get_item(current_user, dataset_id, item_id)
    uploads.complete_upload(item, _parts(_json_body()))
    return jsonify(item=item_json(item), location=None), 200


@bp.route("/uploads/<int:item_id>", methods=["DELETE"])
@login_required
def abort_upload(dataset_id: int, item_id: int) -> Reply:
    """Cancel an unfinished upload and forget the item (Uppy's abortMultipartUpload)."""
    item = services.get_item(current_user, dataset_id, item_id)
    uploads.abort_upload(item)
    return jsonify(aborted=True), 200


@bp.route("/items")
@login_required
def items(dataset_id: int) -> Reply:
    """Every item with its status (or those in one status, ?status=), for live updates."""
    dataset = services.get_dataset(current_user, dataset_id)
    status = request.args.get("status")
    if status is not None and status not in ITEM_STATUSES:
        return jsonify(error=f"status is one of {', '.join(ITEM_STATUSES)}."), 422
    chosen = [item for item in dataset.items if status is None or item.status == status]
    return jsonify(items=[item_json(item) for item in chosen]), 200


@bp.route("/items/<int:item_id>", methods=["PATCH"])
@login_required
def update_item(dataset_id: int, item_id: int) -> Reply:
    """Edit one item's caption."""
    item = services.get_item(current_user, dataset_id, item_id)
    body = _json_body()
    if "caption" not in body:
        return jsonify(error="Send the new caption."), 422
    captions.set_caption(item, body["caption"])
    return jsonify(item=item_json(item)), 200


@bp.route("/captions", methods=["POST"])
@login_required
def pair_captions(dataset_id: int) -> Reply:
    """Pair .txt captions (path -> text) with the items of the same name."""
    dataset = services.get_dataset(current_user, dataset_id)
    given = _json_body().get("captions")
    if not isinstance(given, dict) or len(given) > 5000:
        return jsonify(error="Send captions as an object of file path -> text."), 422
    paired, unmatched = captions.pair_captions(dataset, given)
    return jsonify(paired=paired, unmatched=unmatched), 200


@bp.route("/bucket-preview", methods=["GET", "POST"])
@login_required
def bucket_preview(dataset_id: int) -> Reply:
    """POST queues a preview for a base model and resolution; GET reads it (poll)."""
    dataset = services.get_dataset(current_user, dataset_id)
    source = _json_body() if request.method == "POST" else request.args
    info, resolution = previews.check_choice(
        source.get("family"), source.get("resolution"), get_settings().enabled_families
    )
    if request.method == "POST":
        previews.request_preview(dataset, info.name, resolution)
    state = previews.read_preview(dataset, info.name, resolution)
    poll = url_for(
        ".bucket_preview", dataset_id=dataset.id, family=info.name, resolution=resolution
    )
    body = {**state, "family": info.name, "resolution": resolution, "poll": poll}
    return jsonify(body), (202 if request.method == "POST" else 200)


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "Send a JSON object.")
    return body


def _parts(body: dict[str, Any]) -> list[PartRef]:
    """Parts as Uppy sends them ([{PartNumber, ETag}]) or as a list of ETags in order."""
    if isinstance(body.get("parts"), list):
        parts = body["parts"]
        if all(
            isinstance(p, dict)
            and isinstance(p.get("PartNumber"), int)
            and isinstance(p.get("ETag"), str)
            for p in parts
        ):
            return [PartRef(p["PartNumber"], p["ETag"]) for p in parts]
    elif isinstance(body.get("etags", []), list):
        etags = body.get("etags", [])
        if all(isinstance(e, str) for e in etags):
            return [PartRef(number, etag) for number, etag in enumerate(etags, start=1)]
    abort(422, "Send parts as [{PartNumber, ETag}] or etags as a list of the parts' ETags.")


def item_json(item: DatasetItem) -> dict[str, Any]:
    """One item for the page and scripts."""
    return {
        "id": item.id,
        "filename": item.filename,
        "kind": item.media_kind,
        "status": item.status,
        "reject_reason": item.reject_reason,
        "size": item.size_bytes,
        "width": item.width,
        "height": item.height,
        "duration_s": item.duration_s,
        "fps": item.fps,
        "caption": item.caption,
        "archive": item.archive_name,
        "thumbnail": url_for("datasets.thumbnail", dataset_id=item.dataset_id, item_id=item.id)
        if item.thumbnail_key
        else None,
    }
