"""The account e-mails: verify an address, reset a password, confirm a new address."""

from __future__ import annotations

from app.accounts.mail import queue_email, send_email
from app.accounts.models import User
from app.accounts.tokens import MAX_AGE_S, make_token
from app.extensions import get_settings


def _link(path: str) -> str:
    return get_settings().base_url.rstrip("/") + path


def queue_verification(user: User) -> None:
    """Ask the person to confirm that the address is theirs."""
    link = _link(f"/verify-email/{make_token(user, 'verify')}")
    body = (
        f"Hello {user.name},\n\nPlease confirm your e-mail address for Attune:\n{link}\n\n"
        f"The link works once, for {MAX_AGE_S['verify'] // 3600} hours.\n"
    )
    queue_email(user.email, "Confirm your e-mail address for Attune", body, account_id=user.id)


def send_password_reset(user: User) -> None:
    """Send now (from a worker): the link that sets a new password."""
    link = _link(f"/reset-password/{make_token(user, 'reset')}")
    body = (
        f"Hello {user.name},\n\nSomeone (hopefully you) asked to reset your Attune password.\n"
        f"Choose a new one here:\n{link}\n\n"
        f"The link works once, for {MAX_AGE_S['reset'] // 60} minutes. Setting a new password\n"
        "signs you out everywhere. If you did not ask for this, ignore this e-mail.\n"
    )
    send_email(user.email, "Reset your Attune password", body, account_id=user.id)


def queue_email_change(user: User) -> None:
    """Confirm the new address at the new address, and tell the old one."""
    assert user.pending_email is not None
    link = _link(f"/account/email/confirm/{make_token(user, 'email-change')}")
    body = (
        f"Hello {user.name},\n\nConfirm that Attune should use this address from now on:\n"
        f"{link}\n\nThe link works once, for {MAX_AGE_S['email-change'] // 3600} hours.\n"
    )
    queue_email(
        user.pending_email,
        "Confirm your new e-mail address for Attune",
        body,
        account_id=user.id,
    )
    notice = (
        f"Hello {user.name},\n\nSomeone asked to change your Attune e-mail address to "
        f"{user.pending_email}.\nNothing changes until the link sent there is followed. If this "
        "was not you, change your password now.\n"
    )
    queue_email(
        user.email, "Your Attune e-mail address is being changed", notice, account_id=user.id
    )


def queue_password_changed(user: User) -> None:
    """Tell the person their password changed and other sessions were signed out."""
    body = (
        f"Hello {user.name},\n\nYour Attune password was changed and every other session was "
        "signed out.\nIf this was not you, reset your password now:\n"
        f"{_link('/forgot-password')}\n"
    )
    queue_email(user.email, "Your Attune password was changed", body, account_id=user.id)
