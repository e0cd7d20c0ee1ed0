"""Outgoing e-mail: SMTP when configured, else an outbox folder under instance/ (embedded mode).

Web requests never talk to SMTP themselves: they call queue_email(), and a CPU worker sends.
Every e-mail names the account it is for, and send_email() drops it when that account is
deleted or being deleted, however long ago it was queued: this is the one place that rule
lives. Only the deletion receipt goes to an address with no account behind it any more.
It sits in accounts because that rule reads the account, and the account e-mails (verify,
reset, address change) go out through it; billing, privacy and jobs mail through it too.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from app.accounts.services import account_is_leaving
from app.extensions import get_settings
from app.queues import CPU_QUEUE, enqueue_task

log = logging.getLogger(__name__)
SEND_TIMEOUT_S = 60


def build_message(to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text message from the configured sender."""
    settings = get_settings()
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="attune")
    message.set_content(body)
    return message


def outbox_folder() -> Path | None:
    """Where e-mail is written instead of sent (embedded mode, no SMTP host); None with SMTP."""
    settings = get_settings()
    return None if settings.smtp_host else settings.instance_path / "outbox"


def send_email(to: str, subject: str, body: str, *, account_id: int | None) -> bool:
    """Send now (SMTP, or instance/outbox/ without an SMTP host); False when dropped because
    the account is leaving. account_id None: the address has no account (deletion receipt)."""
    if account_id is not None and account_is_leaving(account_id):
        log.info("e-mail for account %s dropped: the account is deleted or leaving", account_id)
        return False
    settings = get_settings()
    message = build_message(to, subject, body)
    outbox = outbox_folder()
    if outbox is not None:
        outbox.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}.eml"
        (outbox / name).write_bytes(bytes(message))
        return True
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)
    return True


def mail_job_prefix(account_id: int | None) -> str:
    """How the RQ ids of an account's queued e-mails begin, so an erasure can find them."""
    return f"mail-{account_id}-" if account_id is not None else "mail-"


def queue_email(to: str, subject: str, body: str, *, account_id: int | None) -> None:
    """Send later from a CPU worker, so a slow mail server never slows a page."""
    enqueue_task(
        "jobs.mail.send",
        to,
        subject,
        body,
        account_id,
        queue=CPU_QUEUE,
        timeout_s=SEND_TIMEOUT_S,
        job_id=mail_job_prefix(account_id) + secrets.token_hex(8),
        # The address and text stay out of job lists, and nothing of a sent e-mail is kept.
        description=f"e-mail for account {account_id}",
        result_ttl_s=0,
    )
