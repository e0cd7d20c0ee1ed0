"""Signed, expiring, single-use links for e-mail verification, password reset and e-mail change.

No table is needed: each token carries a fingerprint of the account fields its use changes
(the password hash for a reset, the verification time for a verification, the addresses for
an e-mail change), so a token stops working the moment it has been used.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.accounts.models import User
from app.extensions import db, get_settings

MAX_AGE_S = {"verify": 48 * 3600, "reset": 3600, "email-change": 24 * 3600}


class TokenError(Exception):
    """The link is forged, expired, already used or for another purpose."""


def make_token(user: User, purpose: str, **extra: str) -> str:
    """A URL-safe token for `purpose` naming the user, with optional extra values."""
    payload: dict[str, Any] = {"u": user.id, "f": _fingerprint(user, purpose), **extra}
    return _serializer(purpose).dumps(payload)


def read_token(token: str, purpose: str) -> tuple[User, dict[str, Any]]:
    """The user and payload of a valid token, or TokenError."""
    try:
        payload = _serializer(purpose).loads(token, max_age=MAX_AGE_S[purpose])
    except SignatureExpired as exc:
        raise TokenError("This link has expired. Ask for a new one.") from exc
    except BadSignature as exc:
        raise TokenError("This link is not valid.") from exc
    user = db.session.get(User, payload.get("u")) if isinstance(payload, dict) else None
    if user is None or user.deletion_requested_at is not None:
        raise TokenError("This link is not valid.")
    if not hmac.compare_digest(str(payload.get("f", "")), _fingerprint(user, purpose)):
        raise TokenError("This link has already been used. Ask for a new one if you need it.")
    return user, payload


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt=f"attune-{purpose}")


def _fingerprint(user: User, purpose: str) -> str:
    if purpose == "verify":
        fields = [user.email, str(user.email_verified_at)]
    elif purpose == "reset":
        fields = [user.email, user.password_hash or ""]
    elif purpose == "email-change":
        fields = [user.email, user.pending_email or ""]
    else:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return hashlib.sha256("\x00".join(fields).encode()).hexdigest()[:32]
