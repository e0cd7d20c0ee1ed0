"""The embedded storage's presigned URLs: chunked PUTs in, attachments out.

Only mounted traffic for the local backend reaches here; with S3 the browser talks to the
bucket directly and these routes answer 404.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, request, send_file

from app.datasets.services import PART_SIZE, SINGLE_PUT_LIMIT
from app.extensions import csrf, get_storage
from storage import LocalStorage, StorageError

bp = Blueprint("local_storage", __name__, url_prefix="/storage/local")
csrf.exempt(bp)  # the signed token in the URL is the credential, as with S3


def _local() -> LocalStorage:
    storage = get_storage()
    if not isinstance(storage, LocalStorage):
        abort(404)
    return storage


@bp.route("/upload/<token>", methods=["PUT"])
def upload(token: str) -> Response:
    """Accept one object or one part, as S3 would for a presigned PUT."""
    storage = _local()
    try:
        claims = storage.verify_token(token, "upload")
        if claims.upload_id:
            etag = storage.write_part(
                claims.upload_id, claims.part_number or 0, request.stream, PART_SIZE
            )
        else:
            etag = storage.write_object_from_stream(claims.key, request.stream, SINGLE_PUT_LIMIT)
    except StorageError as exc:
        abort(403 if "token" in str(exc).lower() else 400, str(exc))
    response = Response(status=200)
    response.headers["ETag"] = f'"{etag}"'
    return response


@bp.route("/download/<token>")
def download(token: str) -> Response:
    """Send the object named by a valid, unexpired token as an attachment."""
    storage = _local()
    try:
        claims = storage.verify_token(token, "download")
        path = storage.path_for(claims.key)
    except StorageError:
        abort(403)
    if not path.is_file():
        abort(404)
    return send_file(path, as_attachment=True, download_name=claims.filename or path.name)
