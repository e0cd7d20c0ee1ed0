"""API key rules: create (shown once), list, revoke (the row is deleted), check a presented key.

A key is "att_live_" plus 43 random base62 characters (256 bits). Only its SHA-256 is stored:
a database leak gives no usable key, and lookups by hash need no slow password hashing
because the secret itself is random.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from app.accounts.models import User
from app.apikeys.models import ApiKey
from app.db_types import utcnow
from app.errors import NotFound
from app.extensions import db

KEY_PREFIX = "att_live_"
SECRET_LENGTH = 43  # base62: 43 characters carry 256 bits
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 6
_ALPHABET = string.ascii_letters + string.digits
_KEY_SHAPE = re.compile(rf"^{KEY_PREFIX}[A-Za-z0-9]{{{SECRET_LENGTH}}}$")
# What a person can choose; "write" always includes reading what one wrote.
ACCESS_CHOICES = {"read": "Read only", "read write": "Read and write"}
MAX_ACTIVE_KEYS = 20
MAX_NAME_CHARS = 80
LAST_USED_STEP = timedelta(minutes=1)


class ApiKeyError(Exception):
    """A key cannot be created or changed as asked; the message is for the person."""


class KeyRefused(Exception):
    """A presented key does not authenticate; `reason` is a short code, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def hash_key(key: str) -> str:
    """The stored form of a key: SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(user: User, name: str, access: str) -> tuple[ApiKey, str]:
    """A new key for the person; returns the row and the full key, which is never stored."""
    name = name.strip()
    if not name:
        raise ApiKeyError("Give the key a name, e.g. the script or machine that uses it.")
    if len(name) > MAX_NAME_CHARS:
        raise ApiKeyError(f"Keep the name under {MAX_NAME_CHARS} characters.")
    if access not in ACCESS_CHOICES:
        raise ApiKeyError("Choose read-only or read-and-write access.")
    if len(list_keys(user)) >= MAX_ACTIVE_KEYS:
        raise ApiKeyError(f"You have {MAX_ACTIVE_KEYS} keys. Revoke one you no longer use first.")
    key = KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
    row = ApiKey(
        user_id=user.id,
        name=name,
        prefix=key[:SHOWN_PREFIX_LENGTH],
        key_hash=hash_key(key),
        scopes=access,
    )
    db.session.add(row)
    db.session.commit()
    return row, key


def list_keys(user: User) -> list[ApiKey]:
    """The person's keys, newest first."""
    query = select(ApiKey).where(ApiKey.user_id == user.id)
    return list(db.session.scalars(query.order_by(ApiKey.id.desc())))


def revoke_key(user: User, key_id: int) -> tuple[str, str]:
    """Delete one of the person's keys, so it stops working at once (seed 003: keys are kept
    until revoked); its name and prefix, for the message. Another person's id is NotFound."""
    key = db.session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user.id))
    if key is None:
        raise NotFound(f"api key {key_id}")
    shown = (key.name, key.prefix)
    db.session.delete(key)
    db.session.commit()
    return shown


def authenticate_key(presented: str, now: datetime | None = None) -> tuple[ApiKey, User]:
    """The key and its owner, or KeyRefused saying why (malformed, unknown, closing)."""
    if not _KEY_SHAPE.match(presented):
        raise KeyRefused(
            "malformed",
            f"That is not an Attune API key: keys start with {KEY_PREFIX} and have "
            f"{len(KEY_PREFIX) + SECRET_LENGTH} characters.",
        )
    row = db.session.execute(
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_hash == hash_key(presented))
    ).first()
    if row is None:
        # A revoked key is deleted, so it lands here too.
        raise KeyRefused(
            "unknown",
            "This API key is not known: it was revoked, or never existed. Create a key on "
            "your account's API keys page.",
        )
    key, user = row
    if user.deletion_requested_at is not None:
        # As with sessions: from the delete request on, nothing of the account is served.
        raise KeyRefused("account_closing", "The account of this API key is being deleted.")
    _note_use(key, now or utcnow())
    return key, user


def _note_use(key: ApiKey, now: datetime) -> None:
    """Record the key's last use, at most once a minute (one conditional UPDATE)."""
    if key.last_used_at is not None and key.last_used_at > now - LAST_USED_STEP:
        return
    db.session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key.id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - LAST_USED_STEP),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def key_allows(key: ApiKey, scope: str) -> bool:
    """True when the key carries `scope` ("read" or "write")."""
    return scope in key.scope_list
