"""API keys: a person's credentials for /api/v1. Only a SHA-256 of each key is stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db_types import UTCDateTime, utcnow
from app.extensions import db


class ApiKey(db.Model):
    """One key: its name, the prefix people recognise it by, its scopes and when it was used."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    # The first characters of the key ("att_live_AbC123"), shown in lists; not enough to use it.
    prefix: Mapped[str] = mapped_column(String(24))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(40))  # space-separated: "read" or "read write"
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    # Updated at most once a minute, so a busy script does not write on every request.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def scope_list(self) -> tuple[str, ...]:
        """The scopes as a tuple, e.g. ("read", "write")."""
        return tuple(self.scopes.split())
