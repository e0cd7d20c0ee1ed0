"""Browser uploads straight to storage: quota, presigned targets, parts, completion, abort.

The page's Uppy AwsS3 plugin calls these through the JSON routes: one call creates the item
and either a single presigned PUT or a multipart upload; parts are signed one at a time (so a
retry after expiry gets a fresh URL); completion checks what arrived and queues ingest.
"""

from __future__ import annotations

import math
import posixpath
import unicodedata
from dataclasses import dataclass

from sqlalchemy import func, select

from app.accounts.models import User
from app.datasets.limits import (
    ACCEPTED_FILES,
    CAPTION_EXTENSION,
    MAX_CAPTION_CHARS,
    PART_SIZE,
    SINGLE_PUT_LIMIT,
    accepted_list,
    extension_of,
    megabytes,
)
from app.datasets.models import Dataset, DatasetItem
from app.datasets.services import (
    DatasetError,
    delete_item_objects,
    storage_allowance,
    storage_used,
)
from app.extensions import db, get_settings, get_storage
from app.queues import CPU_QUEUE, enqueue_task
from storage import InvalidPart, PartRef, StorageError, UploadNotFound

INGEST_TIMEOUT_S = 600
# An archive may hold 5,000 files: give its job time for all of them.
ARCHIVE_INGEST_TIMEOUT_S = 4 * 3600
# Uploads started and not yet completed, per person: bounds the rows a script can make with
# tiny declared sizes (the storage allowance bounds bytes, not rows). A browser sends a few
# files at a time, so a large folder never comes near it.
MAX_UNFINISHED_UPLOADS = 500


@dataclass(frozen=True)
class UploadTarget:
    """Where the browser sends one file's bytes."""

    item: DatasetItem
    method: str  # "single" or "multipart"
    urls: list[str]  # the single PUT, or every part's URL for simple clients
    part_size: int


def clean_display_name(name: str) -> str:
    """The file's path as people see it: '/' separators, no control characters, no leading '/'."""
    text = "".join(ch for ch in name.replace("\\", "/") if unicodedata.category(ch)[0] != "C")
    parts = [part.strip() for part in text.split("/") if part.strip() not in ("", ".", "..")]
    return "/".join(parts)[-255:]


def check_caption(caption: object) -> str | None:
    """A caption sent by the page: text of at most 2,000 characters, or None."""
    if caption is None:
        return None
    if not isinstance(caption, str):
        raise DatasetError("A caption must be text.")
    text = caption.strip()
    if len(text) > MAX_CAPTION_CHARS:
        raise DatasetError(f"Captions are limited to {MAX_CAPTION_CHARS:,} characters.")
    return text or None


def start_upload(
    user: User,
    dataset: Dataset,
    filename: str,
    size: int,
    relative_path: str | None = None,
    caption: str | None = None,
) -> UploadTarget:
    """Check type, size and quota, record a pending item, and presign where its bytes go."""
    display_name = clean_display_name(relative_path or filename)
    base_name = posixpath.basename(display_name)
    extension = extension_of(base_name)
    if extension == CAPTION_EXTENSION:
        raise DatasetError(
            f"“{base_name}” is a caption: drop it together with its image, or put both in a zip."
        )
    if extension not in ACCEPTED_FILES:
        raise DatasetError(
            f"“{base_name or filename}” is not a supported file ({accepted_list()})."
        )
    kind = ACCEPTED_FILES[extension]
    if size <= 0:
        raise DatasetError(f"“{base_name}” is empty.")
    if size > kind.max_bytes:
        raise DatasetError(f"“{base_name}” is larger than {megabytes(kind.max_bytes)}.")
    _check_quota(user, base_name, size)
    _check_unfinished(user)
    item = DatasetItem(
        dataset_id=dataset.id,
        filename=display_name,
        content_type=kind.content_type,
        media_kind=kind.media_kind,
        size_bytes=size,
        storage_key="",
        caption=check_caption(caption),
    )
    db.session.add(item)
    db.session.flush()
    item.upload_key = item.upload_object_key(extension)
    try:
        target = _presign(item, size)
    except StorageError:
        db.session.rollback()
        raise
    db.session.commit()
    return target


def _check_quota(user: User, name: str, size: int) -> None:
    """Refuse, before anything is presigned, an upload the storage allowance cannot hold."""
    # Lock the person's row (PostgreSQL) so two uploads at once cannot both take the last bytes.
    db.session.execute(select(User.id).where(User.id == user.id).with_for_update())
    allowance, used = storage_allowance(user), storage_used(user)
    if used + size > allowance:
        left = max(0, allowance - used)
        raise DatasetError(
            f"“{name}” ({megabytes(size)}) does not fit: {megabytes(left)} of your "
            f"{megabytes(allowance)} storage is left. Delete some items or choose a larger plan."
        )


def _check_unfinished(user: User) -> None:
    """Refuse a new upload while too many of the person's uploads are still in flight."""
    unfinished = db.session.scalar(
        select(func.count(DatasetItem.id))
        .join(Dataset, Dataset.id == DatasetItem.dataset_id)
        .where(Dataset.user_id == user.id, DatasetItem.status == "uploading")
    )
    if (unfinished or 0) >= MAX_UNFINISHED_UPLOADS:
        raise DatasetError(
            f"You have {MAX_UNFINISHED_UPLOADS} uploads in progress. Let them finish, or cancel "
            "some, before starting more."
        )


def _presign(item: DatasetItem, size: int) -> UploadTarget:
    storage, key = get_storage(), _upload_key(item)
    if size > SINGLE_PUT_LIMIT:
        item.upload_id = storage.create_multipart(key, item.content_type)
    return _fresh_target(item)


def _fresh_target(item: DatasetItem) -> UploadTarget:
    """New URLs for the item's single PUT, or for every part of its multipart upload."""
    storage, expiry, key = get_storage(), get_settings().upload_url_expiry_s, _upload_key(item)
    if not item.upload_id:
        url = storage.presign_put(key, item.content_type, expiry)
        return UploadTarget(item, "single", [url], item.size_bytes)
    urls = [
        storage.presign_part(key, item.upload_id, number, expiry)
        for number in range(1, part_count(item) + 1)
    ]
    return UploadTarget(item, "multipart", urls, PART_SIZE)


def resume_upload(item: DatasetItem) -> UploadTarget:
    """The target of an upload the browser lost track of (a reload, a dropped connection):
    the same item and multipart upload, with fresh URLs, so no new item is made and parts
    already stored are kept (the browser lists them and sends only the rest)."""
    _uploading(item)
    return _fresh_target(item)


def part_count(item: DatasetItem) -> int:
    """How many parts the item's declared size makes."""
    return max(1, math.ceil(item.size_bytes / PART_SIZE))


def _uploading(item: DatasetItem) -> DatasetItem:
    if item.status != "uploading":
        raise DatasetError(f"“{item.filename}” was already uploaded.")
    return item


def _upload_key(item: DatasetItem) -> str:
    """The key the item's bytes are sent to (every item that uploads has one)."""
    if not item.upload_key:
        raise DatasetError(f"“{item.filename}” was not uploaded from the browser.")
    return item.upload_key


def upload_refusal(key: str) -> str | None:
    """Why the browser may no longer send bytes to `key`; None while its item is uploading.

    The local storage route asks before writing, so an upload URL stops working the moment its
    item is completed, cancelled, refused or deleted (S3 URLs live until they expire; nothing
    reads an upload key after ingest, see jobs.datasets).
    """
    query = select(DatasetItem.status, DatasetItem.filename).where(DatasetItem.upload_key == key)
    # Its own short connection: the upload that follows may stream for minutes, and should not
    # hold a transaction open meanwhile.
    with db.engine.connect() as connection:
        row = connection.execute(query).first()
    status, name = (row.status, row.filename) if row is not None else (None, "")
    if status == "uploading":
        return None
    if status is None:
        return "This upload was cancelled or its file deleted; this link takes no more bytes."
    if status == "rejected":
        return f"“{name}” was refused; upload it again as a new file."
    return f"“{name}” has already been uploaded; this link takes no more bytes."


def sign_part(item: DatasetItem, part_number: int) -> str:
    """A fresh presigned URL for one part of the item's multipart upload."""
    _uploading(item)
    if not item.upload_id:
        raise DatasetError(f"“{item.filename}” is sent in one piece, not in parts.")
    if not 1 <= part_number <= part_count(item):
        raise DatasetError(f"“{item.filename}” has parts 1 to {part_count(item)} only.")
    expiry = get_settings().upload_url_expiry_s
    return get_storage().presign_part(_upload_key(item), item.upload_id, part_number, expiry)


def list_parts(item: DatasetItem) -> list[PartRef]:
    """The parts storage has received so far (for resuming an interrupted upload)."""
    _uploading(item)
    if not item.upload_id:
        return []
    try:
        return get_storage().list_parts(_upload_key(item), item.upload_id)
    except UploadNotFound as exc:
        raise DatasetError(f"The upload of “{item.filename}” has ended; start it again.") from exc


def complete_upload(item: DatasetItem, parts: list[PartRef]) -> DatasetItem:
    """Finish the item's upload, check what arrived and queue the ingest job."""
    _uploading(item)
    storage, key = get_storage(), _upload_key(item)
    if item.upload_id:
        try:
            storage.complete_multipart(key, item.upload_id, parts)
        except (InvalidPart, ValueError) as exc:
            raise DatasetError(
                f"Some parts of “{item.filename}” are missing or damaged; send them again."
            ) from exc
        except UploadNotFound as exc:
            raise DatasetError(
                f"The upload of “{item.filename}” has ended; start it again."
            ) from exc
        item.upload_id = None
        db.session.commit()
    info = storage.stat(key)
    if info is None:
        raise DatasetError(f"“{item.filename}” has not arrived yet; upload it again.")
    if info.size != item.size_bytes:
        _discard(item)
        raise DatasetError(f"“{item.filename}” arrived incomplete; upload it again.")
    item.status = "uploaded"
    db.session.commit()
    try:
        queue_ingest(item)
    except Exception:
        # No job means no ingest: leave the item completable, so the retry queues it.
        item.status = "uploading"
        db.session.commit()
        raise
    return item


def queue_ingest(item: DatasetItem) -> None:
    """Put the item's ingest job on the CPU queue."""
    timeout = ARCHIVE_INGEST_TIMEOUT_S if item.media_kind == "archive" else INGEST_TIMEOUT_S
    enqueue_task(
        "jobs.datasets.ingest",
        item.id,
        queue=CPU_QUEUE,
        timeout_s=timeout,
        job_id=ingest_job_id(item.id),
    )


def ingest_job_id(item_id: int) -> str:
    """The RQ job id of an item's ingest, so a sweeper can tell whether Redis still has it."""
    return f"ingest-{item_id}"


def abort_upload(item: DatasetItem) -> None:
    """Drop an unfinished upload: its parts, any bytes, and its row."""
    _uploading(item)
    _discard(item)


def _discard(item: DatasetItem) -> None:
    delete_item_objects(item)
    db.session.delete(item)
    db.session.commit()
