"""The e-mails about a person's data: retention warnings, exports, the account deletion receipt."""

from __future__ import annotations

from datetime import datetime

from app.accounts.mail import queue_email
from app.billing.services import long_date, long_moment
from app.extensions import get_settings

GROUP_WORDS = {
    "media": "uploaded datasets and generated images and videos",
    "loras": "trained LoRA models and checkpoints",
}


def _link(path: str) -> str:
    return get_settings().base_url.rstrip("/") + path


def queue_retention_warning(
    account_id: int, to: str, name: str, group: str, deadline: datetime
) -> None:
    """Warn that a group of data will be deleted at `deadline` unless they subscribe again."""
    words = GROUP_WORDS[group]
    body = (
        f"Hello {name},\n\n"
        f"Your Attune subscription is not active, so your {words} will be deleted on "
        f"{long_moment(deadline)}.\n\n"
        f"To keep them, subscribe again before then. To take a copy, request an export on\n"
        f"{_link('/my-data')}\n\n"
        "Deleted files cannot be recovered. You will find a receipt on the same page.\n"
    )
    subject = f"Your {words} will be deleted on {long_date(deadline)}"
    queue_email(to, subject, body, account_id=account_id)


def queue_export_ready(account_id: int, to: str, name: str, expires_at: datetime) -> None:
    """Tell the person their export can be downloaded, and until when."""
    body = (
        f"Hello {name},\n\n"
        "The export of your Attune data is ready. Download it (signed in) from\n"
        f"{_link('/my-data')}\n\n"
        f"It is deleted on {long_moment(expires_at)}.\n"
    )
    queue_email(to, "Your Attune data export is ready", body, account_id=account_id)


def queue_account_deleted(to: str, name: str, summary: dict[str, int]) -> None:
    """The final receipt after an account was erased: the one e-mail to an address whose
    account is gone."""
    lines = "\n".join(f"- {what}: {count}" for what, count in summary.items())
    body = (
        f"Hello {name},\n\n"
        "Your Attune account has been deleted, as you asked. We removed:\n"
        f"{lines}\n\n"
        "Your subscription was cancelled and every session signed out. Billing records\n"
        "(subscription and GPU-usage ledger entries) are kept without your name or e-mail,\n"
        "because the law requires us to keep financial records.\n"
    )
    queue_email(to, "Your Attune account has been deleted", body, account_id=None)
