"""People with accounts and the outside identities (Google) they sign in with."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, UniqueConstraint, false, func
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
    # A new address waiting for its confirmation link to be followed.
    pending_email: Mapped[str | None] = mapped_column(String(254))
    # The privacy policy version the person accepted (at sign-up or from the change notice).
    policy_version: Mapped[str | None] = mapped_column(String(20))
    # Set when the person asked to delete the account; the deletion job finishes the work.
    deletion_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Bumped to revoke every session of this person on the server side.
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )

    def get_id(self) -> str:
        """Flask-Login's session id: user id plus session version, so revocation logs out."""
        return f"{self.id}:{self.session_version}"

    @property
    def has_password(self) -> bool:
        """False for accounts that only sign in with Google."""
        return bool(self.password_hash)


class SignedOutSession(db.Model):
    """One device's session, signed out on its own: its id is refused from then on (a signed
    cookie expires after the session lifetime anyway, so older rows can go)."""

    __tablename__ = "signed_out_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    signed_out_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )


class Identity(db.Model):
    """An outside sign-in (provider "google") keyed by the provider's stable subject id."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("provider", "subject", name="uq_identities_provider_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
