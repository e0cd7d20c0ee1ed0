"""/api/v1 datasets: create, list, get, items, and the presigned upload flow of the browser
(start, sign parts, list parts to resume, complete, abort), through the same services."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, url_for

from app.api_v1.auth import current_caller, needs_write, upload_rate_key
from app.api_v1.blueprint import bp
from app.api_v1.parsing import Invalid, int_field, json_body, page_body, page_request, text_field
from app.api_v1.shapes import dataset_json, item_json
from app.datasets import services, uploads
from app.datasets.limits import PART_SIZE
from app.datasets.models import Dataset
from app.extensions import get_settings, limiter
from storage import PartRef

Reply = tuple[Response, int]
MAX_PARTS = 10_000  # S3's own limit on parts per upload


def _dataset(dataset_id: int) -> Dataset:
    return services.get_dataset(current_caller().user, dataset_id)


def _summary(dataset: Dataset) -> dict[str, Any]:
    return dataset_json(services.summarize_datasets(current_caller().user, [dataset])[0])


@bp.route("/datasets")
def list_datasets() -> Response:
    """The caller's datasets, newest first, a page at a time."""
    page, user = page_request(), current_caller().user
    rows = services.list_datasets(user, page.last_id, page.limit + 1)
    summaries = {s.dataset.id: s for s in services.summarize_datasets(user, rows)}
    return jsonify(page_body(rows, page, lambda d: dataset_json(summaries[d.id])))


@bp.route("/datasets", methods=["POST"])
def create_dataset() -> Reply:
    """A new, empty dataset."""
    body = json_body(("name", "trigger_word", "caption_template"))
    errors: dict[str, str] = {}
    name = text_field(body, "name", errors, required=True)
    trigger = text_field(body, "trigger_word", errors)
    template = text_field(body, "caption_template", errors)
    if errors:
        raise Invalid(errors)
    dataset = services.create_dataset(current_caller().user, name or "", trigger, template)
    response = jsonify(_summary(dataset))
    response.headers["Location"] = url_for(".get_dataset", dataset_id=dataset.id)
    return response, 201


@bp.route("/datasets/<int:dataset_id>")
def get_dataset(dataset_id: int) -> Response:
    """One dataset with its item counts."""
    return jsonify(_summary(_dataset(dataset_id)))


@bp.route("/datasets/<int:dataset_id>/items")
def list_items(dataset_id: int) -> Response:
    """The dataset's files in upload order with their ingest state and rejection reasons."""
    dataset, page = _dataset(dataset_id), page_request()
    rows = services.list_items(dataset, page.last_id, page.limit + 1)
    return jsonify(page_body(rows, page, item_json))


@bp.route("/datasets/<int:dataset_id>/uploads", methods=["POST"])
@limiter.limit("300 per minute", key_func=upload_rate_key, override_defaults=False)
def start_upload(dataset_id: int) -> Reply:
    """Check type, size and storage allowance; presign one PUT or every part of a multipart."""
    dataset = _dataset(dataset_id)
    body = json_body(("filename", "size", "relative_path", "caption"))
    errors: dict[str, str] = {}
    filename = text_field(body, "filename", errors, required=True)
    size = int_field(body, "size", errors, required=True, high=2**63 - 1)
    relative_path = text_field(body, "relative_path", errors)
    caption = text_field(body, "caption", errors)
    if errors:
        raise Invalid(errors)
    target = uploads.start_upload(
        current_caller().user, dataset, filename or "", size or 0, relative_path, caption
    )
    return _target_json(target), 201


@bp.route("/datasets/<int:dataset_id>/uploads/<int:item_id>/target")
@needs_write
def resume_upload(dataset_id: int, item_id: int) -> Response:
    """Fresh URLs for an upload still under way: the same item and multipart upload, so the
    parts storage holds (see the parts listing) need not be sent again."""
    item = services.get_item(current_caller().user, dataset_id, item_id)
    return _target_json(uploads.resume_upload(item))


def _target_json(target: uploads.UploadTarget) -> Response:
    return jsonify(
        item=item_json(target.item),
        method=target.method,
        urls=target.urls,
        part_size=target.part_size,
        part_count=len(target.urls),
        content_type=target.item.content_type,
        expires_in=get_settings().upload_url_expiry_s,
    )


@bp.route("/datasets/<int:dataset_id>/uploads/<int:item_id>/parts/<int:part_number>")
@needs_write
def sign_part(dataset_id: int, item_id: int, part_number: int) -> Response:
    """A fresh presigned URL for one part (when the first one expired)."""
    item = services.get_item(current_caller().user, dataset_id, item_id)
    url = uploads.sign_part(item, part_number)
    return jsonify(url=url, expires_in=get_settings().upload_url_expiry_s)


@bp.route("/datasets/<int:dataset_id>/uploads/<int:item_id>/parts")
@needs_write
def list_parts(dataset_id: int, item_id: int) -> Response:
    """The parts storage holds so far, to resume an interrupted upload."""
    item = services.get_item(current_caller().user, dataset_id, item_id)
    parts = uploads.list_parts(item)
    return jsonify(
        parts=[{"part_number": p.number, "etag": p.etag, "size": p.size} for p in parts],
        part_count=uploads.part_count(item) if item.upload_id else 1,
        part_size=PART_SIZE if item.upload_id else item.size_bytes,
    )


@bp.route("/datasets/<int:dataset_id>/uploads/<int:item_id>/complete", methods=["POST"])
def complete_upload(dataset_id: int, item_id: int) -> Response:
    """The bytes are there: join the parts, check the size and queue ingest."""
    item = services.get_item(current_caller().user, dataset_id, item_id)
    parts = _parts(json_body(("parts",), optional_body=True))
    return jsonify(item=item_json(uploads.complete_upload(item, parts)))


@bp.route("/datasets/<int:dataset_id>/uploads/<int:item_id>", methods=["DELETE"])
def abort_upload(dataset_id: int, item_id: int) -> Response:
    """Cancel an unfinished upload and forget its item."""
    item = services.get_item(current_caller().user, dataset_id, item_id)
    uploads.abort_upload(item)
    return Response(status=204)


def _parts(body: dict[str, Any]) -> list[PartRef]:
    """[{"part_number": 1, "etag": "..."}, ...] as sent; none for a single PUT."""
    given = body.get("parts", [])
    if not isinstance(given, list) or len(given) > MAX_PARTS:
        raise Invalid({"parts": f"Send a list of at most {MAX_PARTS} parts."})
    return [_part(index, part) for index, part in enumerate(given)]


def _part(index: int, part: Any) -> PartRef:
    errors: dict[str, str] = {}
    if isinstance(part, dict):
        number = int_field(part, "part_number", errors, required=True, low=1, high=MAX_PARTS)
        etag = text_field(part, "etag", errors, required=True)
        if number is not None and etag is not None and len(etag) <= 1024:
            return PartRef(number, etag)
    raise Invalid({f"parts[{index}]": 'Each part is {"part_number": n, "etag": "…"}.'})
