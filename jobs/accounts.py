"""Account jobs: erasing a deleted account, sending password-reset e-mails."""

from __future__ import annotations

from app.accounts.credentials import send_password_reset_for
from app.privacy.erasure import erase_account, sweep_late_uploads
from jobs.context import app_context, job_logger


def delete_account(user_id: int, attempt: int = 1) -> str:
    """Erase the account (storage, rows, Redis, billing stopped) once its owner asked;
    re-runnable. Runs on the privacy queue; waits for the person's running jobs to stop."""
    with app_context():
        outcome = erase_account(user_id, attempt)
        job_logger(__name__, f"delete account {user_id} attempt {attempt}").info(outcome)
        return outcome


def sweep_erased_account(user_id: int) -> int:
    """After the upload URLs handed out before the erasure expired: delete what they brought."""
    with app_context():
        removed = sweep_late_uploads(user_id)
        job_logger(__name__, f"late sweep of account {user_id}").info("%d objects", removed)
        return removed


def send_password_reset(email: str) -> None:
    """Send the reset link when an account uses `email`; nothing otherwise (same to the asker)."""
    with app_context():
        send_password_reset_for(email)
