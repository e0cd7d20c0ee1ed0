"""Account rules: sign-up, authentication, profile, session revocation."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import SignedOutSession, User
from app.accounts.passwords import hash_password, needs_rehash, password_problem, verify_password
from app.db_types import utcnow
from app.extensions import db
from app.privacy_policy import POLICY_VERSION


class AccountError(Exception):
    """A rule about accounts was broken; `field` names the form field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def normalize_email(email: str) -> str:
    """The form in which e-mails are stored and compared."""
    return email.strip().lower()


def register_user(
    name: str, email: str, password: str, company: str | None, adult_confirmed: bool
) -> User:
    """Create an account, or raise AccountError naming the field that is wrong."""
    email = normalize_email(email)
    if not adult_confirmed:
        raise AccountError("adult", "You must be 18 or older to use Attune.")
    problem = password_problem(password, email=email, name=name)
    if problem:
        raise AccountError("password", problem)
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError("email", "An account with this e-mail already exists. Sign in instead.")
    user = User(
        name=name.strip(),
        email=email,
        company=(company or "").strip() or None,
        password_hash=hash_password(password),
        adult_confirmed_at=utcnow(),
        policy_version=POLICY_VERSION,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError as exc:  # two sign-ups racing for one e-mail
        db.session.rollback()
        raise AccountError("email", "An account with this e-mail already exists.") from exc
    return user


def authenticate(email: str, password: str) -> User | None:
    """The user whose e-mail and password match, else None (same work either way)."""
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if not verify_password(user.password_hash if user else None, password):
        return None
    if user is not None and user.deletion_requested_at is not None:
        return None
    assert user is not None and user.password_hash is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.commit()
    return user


def load_session_user(session_id: str, device: str | None = None) -> User | None:
    """The user behind a session id "id:version" on `device`, or None once the session was
    revoked (everywhere, or on that device)."""
    user_id, _, version = session_id.partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.session_version != int(version) or user.deletion_requested_at:
        return None
    if device is not None and db.session.get(SignedOutSession, device) is not None:
        return None
    return user


def new_device_id() -> str:
    """A random id for one signed-in device's session, so it can be signed out on its own."""
    return secrets.token_urlsafe(24)


def sign_out_device(user: User, device: str | None, session_lifetime: timedelta) -> None:
    """Refuse this device's session from now on; the person's other devices stay signed in.

    A session from before devices had ids cannot be told apart: it is signed out everywhere.
    """
    if device is None:
        revoke_sessions(user)
        return
    expired = utcnow() - session_lifetime  # cookies this old are refused by their signature
    db.session.execute(
        delete(SignedOutSession).where(
            SignedOutSession.user_id == user.id, SignedOutSession.signed_out_at < expired
        )
    )
    if db.session.get(SignedOutSession, device) is None:
        db.session.add(SignedOutSession(id=device, user_id=user.id))
    db.session.commit()


def account_is_leaving(user_id: int) -> bool:
    """True once the account is erased or its owner asked to delete it: from then on nothing
    of theirs is served, mailed or produced."""
    user = db.session.get(User, user_id)
    return user is None or user.deletion_requested_at is not None


def revoke_sessions(user: User) -> None:
    """Log the person out everywhere by bumping the session version."""
    user.session_version += 1
    db.session.commit()


def email_taken(email: str, except_user: User | None = None) -> bool:
    """True when another account uses `email` (or is waiting to switch to it)."""
    email = normalize_email(email)
    query = select(User.id).where((User.email == email) | (User.pending_email == email))
    if except_user is not None:
        query = query.where(User.id != except_user.id)
    return db.session.scalar(query.limit(1)) is not None


def update_profile(user: User, name: str, company: str | None) -> None:
    """Correct the name and company."""
    name = name.strip()
    if not name:
        raise AccountError("name", "Tell us your name.")
    user.name, user.company = name[:120], (company or "").strip()[:120] or None
    db.session.commit()


def accept_policy(user: User) -> None:
    """Record that the person has seen the current privacy policy."""
    user.policy_version = POLICY_VERSION
    db.session.commit()
