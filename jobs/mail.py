"""Sends queued e-mails."""

from __future__ import annotations

from app.accounts.mail import send_email
from jobs.context import app_context


def send(to: str, subject: str, body: str, account_id: int | None = None) -> None:
    """Send one e-mail unless its account is leaving; RQ retries are safe because a failed
    send raised before delivery. (Jobs queued before account ids existed carry none.)"""
    with app_context():
        send_email(to, subject, body, account_id=account_id)
