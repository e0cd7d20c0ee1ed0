"""People with accounts."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import String, false, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db_types import UTCDateTime, utcnow
from app.extensions import db


class User(UserMixin, db.Model):
    """An account. The e-mail is stored lower-cased; the IP address is never stored here."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    company: Mapped[str | None] = mapped_column(String(120))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    adult_confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Bumped to revoke every session of this person on the server side.
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )

    def get_id(self) -> str:
        """Flask-Login's session id: user id plus session version, so revocation logs out."""
        return f"{self.id}:{self.session_version}"
