"""E-mail verification, password reset and change, e-mail change.

Setting a new password (by change or reset) revokes every other session on the server side.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts import emails
from app.accounts.models import User
from app.accounts.passwords import hash_password, password_problem, verify_password
from app.accounts.services import AccountError, email_taken, normalize_email
from app.accounts.tokens import read_token
from app.db_types import utcnow
from app.extensions import db
from app.queues import CPU_QUEUE, enqueue_task

RESET_JOB_TIMEOUT_S = 60


def verify_email(token: str) -> User:
    """Mark the address in the token as verified; raises TokenError."""
    user, _ = read_token(token, "verify")
    user.email_verified_at = utcnow()
    db.session.commit()
    return user


def request_password_reset(email: str) -> None:
    """Queue the reset e-mail job; known and unknown addresses take exactly the same path.

    The web request never looks the address up: the worker does, and sends the e-mail only
    when an account exists, so neither the answer nor its timing tells them apart.
    """
    enqueue_task(
        "jobs.accounts.send_password_reset",
        normalize_email(email)[:254],
        queue=CPU_QUEUE,
        timeout_s=RESET_JOB_TIMEOUT_S,
        description="jobs.accounts.send_password_reset",  # the address stays out of job lists
        result_ttl_s=0,  # nor does a finished job keep it
    )


def send_password_reset_for(email: str) -> bool:
    """Worker side of request_password_reset: True when an e-mail went out."""
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None or user.deletion_requested_at is not None:
        return False
    emails.send_password_reset(user)
    return True


def reset_password(token: str, password: str) -> User:
    """Set the new password from a reset link and sign out every session."""
    user, _ = read_token(token, "reset")
    _set_password(user, password)
    # Following the link proves the address belongs to the person.
    user.email_verified_at = user.email_verified_at or utcnow()
    db.session.commit()
    return user


def change_password(user: User, current: str, new: str) -> None:
    """Check the current password, set the new one and sign out every session."""
    if user.has_password and not verify_password(user.password_hash, current):
        raise AccountError("current_password", "That is not your current password.")
    _set_password(user, new)
    db.session.commit()
    emails.queue_password_changed(user)


def _set_password(user: User, password: str) -> None:
    problem = password_problem(password, email=user.email, name=user.name)
    if problem:
        raise AccountError("password", problem)
    user.password_hash = hash_password(password)
    user.session_version += 1


def request_email_change(user: User, new_email: str, password: str) -> None:
    """Remember the new address and send it a confirmation link; nothing changes before that."""
    new_email = normalize_email(new_email)
    if user.has_password and not verify_password(user.password_hash, password):
        raise AccountError("password", "That is not your password.")
    if new_email == user.email:
        raise AccountError("email", "That is already your e-mail address.")
    if email_taken(new_email, except_user=user):
        raise AccountError("email", "Another account uses this e-mail address.")
    user.pending_email = new_email
    db.session.commit()
    emails.queue_email_change(user)


def confirm_email_change(token: str) -> User:
    """Switch to the confirmed new address (now verified); raises TokenError or AccountError."""
    user, _ = read_token(token, "email-change")
    new_email = user.pending_email
    if new_email is None:
        raise AccountError("email", "There is no e-mail change waiting.")
    if db.session.scalar(select(User.id).where(User.email == new_email)) is not None:
        raise AccountError("email", "Another account now uses this e-mail address.")
    user.email, user.pending_email, user.email_verified_at = new_email, None, utcnow()
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise AccountError("email", "Another account now uses this e-mail address.") from exc
    return user
