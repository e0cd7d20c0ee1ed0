"""The embedded storage's presigned URLs: chunked PUTs in, attachments out.

Only the local backend uses these routes; with S3 the browser talks to the bucket directly
and they answer 404.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, request

from app.datasets.limits import PART_SIZE
from app.datasets.uploads import upload_refusal
from app.extensions import csrf, get_storage
from app.privacy.services import download_allowed
from storage import (
    InvalidToken,
    LocalStorage,
    ObjectNotFound,
    PayloadTooLarge,
    StorageError,
    attachment_disposition,
)

bp = Blueprint("local_storage", __name__, url_prefix="/storage/local")
csrf.exempt(bp)  # the signed token in the URL is the credential, as with S3


def _local() -> LocalStorage:
    storage = get_storage()
    if not isinstance(storage, LocalStorage):
        abort(404)
    return storage


@bp.route("/upload/<token>", methods=["PUT"])
def upload(token: str) -> Response:
    """Accept one object or one part while its item is still uploading, as S3 would for a
    presigned PUT; afterwards the link answers 403 with the reason."""
    storage = _local()
    try:
        claims = storage.verify_token(token, "upload")
    except InvalidToken:
        abort(403, "This upload link is invalid or has expired, or its upload has ended.")
    refusal = upload_refusal(claims.key)
    if refusal is not None:
        abort(403, refusal)
    try:
        etag = storage.write_upload(claims, request.stream, PART_SIZE)
    except PayloadTooLarge:
        abort(413)
    except StorageError as exc:
        abort(400, str(exc))
    response = Response(status=200)
    response.headers["ETag"] = f'"{etag}"'
    return response


@bp.route("/download/<token>")
def download(token: str) -> Response:
    """Stream the object named by a valid, unexpired token as an attachment."""
    storage = _local()
    try:
        claims = storage.verify_token(token, "download")
        if not download_allowed(claims.key):
            raise ObjectNotFound(claims.key)  # its owner deleted the account
        info = storage.stat(claims.key)
        if info is None:
            raise ObjectNotFound(claims.key)
        stream = storage.open_stream(claims.key)
    except InvalidToken:
        abort(403, "This download link is invalid or has expired.")
    except ObjectNotFound:
        abort(404)
    mimetype = info.content_type or "application/octet-stream"
    response = Response(stream, mimetype=mimetype, direct_passthrough=True)
    response.headers["Content-Length"] = str(info.size)
    response.headers["Content-Disposition"] = attachment_disposition(
        claims.filename or claims.key.rsplit("/", 1)[-1]
    )
    response.headers["Cache-Control"] = "private, no-store"
    response.call_on_close(stream.close)
    return response
