"""Datasets and the files in them."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import object_keys
from app.db_types import UTCDateTime, utcnow
from app.extensions import db

ITEM_STATUSES = ("uploading", "uploaded", "ready", "rejected")
MEDIA_KINDS = ("image", "video", "archive")


class Dataset(db.Model):
    """A named set of images or clips with captions, owned by one person."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    trigger_word: Mapped[str | None] = mapped_column(String(64))
    caption_template: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    items: Mapped[list[DatasetItem]] = relationship(
        back_populates="dataset", cascade="all, delete-orphan", order_by="DatasetItem.id"
    )

    def storage_prefix(self) -> str:
        """Where this dataset's objects live; built on the server only."""
        return object_keys.dataset_prefix(self.user_id, self.id)


class DatasetItem(db.Model):
    """One uploaded file: an image or a clip, its caption, and what ingest made of it."""

    __tablename__ = "dataset_items"
    __table_args__ = (
        Index("ix_dataset_items_dataset_status", "dataset_id", "status"),
        Index("ix_dataset_items_upload_key", "upload_key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    media_kind: Mapped[str | None] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # The bytes ingest checked, at a key only the server writes: what training, captions and
    # exports read. Empty until the item is ready (rows ingested before upload keys existed
    # keep their original key here, see migration 0006).
    storage_key: Mapped[str] = mapped_column(String(1024))
    # Where the browser sends the bytes (presigned); never read as the item's data. Kept after
    # ingest so the local upload route can say why its URL no longer works.
    upload_key: Mapped[str | None] = mapped_column(String(1024))
    thumbnail_key: Mapped[str | None] = mapped_column(String(1024))
    upload_id: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16), default="uploading")
    reject_reason: Mapped[str | None] = mapped_column(String(500))
    width: Mapped[int | None]  # display orientation (after EXIF / rotation)
    height: Mapped[int | None]
    duration_s: Mapped[float | None]
    fps: Mapped[float | None]
    frame_count: Mapped[int | None]
    # The zip an item was unpacked from (display only; keys never come from names).
    archive_name: Mapped[str | None] = mapped_column(String(255))
    caption: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    dataset: Mapped[Dataset] = relationship(back_populates="items")

    def object_prefix(self) -> str:
        """Where this item's objects (original, thumbnail, unpacked entries) live."""
        return object_keys.item_prefix(self.dataset.user_id, self.dataset_id, self.id)

    def upload_object_key(self, extension: str) -> str:
        """A new key for the browser's bytes to be presigned to; built on the server only."""
        # A random name, because ids come back (SQLite hands out the highest id again once its
        # row is deleted): a URL made for a cancelled or deleted item must never name the
        # upload of the item that later gets its id.
        return object_keys.item_upload(self.object_prefix(), secrets.token_urlsafe(12), extension)

    def accepted_object_key(self, extension: str) -> str:
        """The key ingest copies the bytes to before checking them; never presigned."""
        return object_keys.item_accepted(self.object_prefix(), extension)

    @property
    def is_settled(self) -> bool:
        """True once ingest has decided: ready or rejected."""
        return self.status in ("ready", "rejected")
