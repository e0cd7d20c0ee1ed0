"""Sends queued e-mails."""

from __future__ import annotations

from app.mail import send_email
from jobs.context import app_context


def send(to: str, subject: str, body: str) -> None:
    """Send one e-mail; RQ retries are safe because a failed send raised before delivery."""
    with app_context():
        send_email(to, subject, body)
