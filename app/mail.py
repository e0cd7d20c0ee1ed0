"""Outgoing e-mail: SMTP when configured, else an outbox folder under instance/ (embedded mode).

Web requests never talk to SMTP themselves: they call queue_email(), and a CPU worker sends.
"""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage
from email.utils import make_msgid

from app.extensions import get_settings
from app.queues import CPU_QUEUE, enqueue_task

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


def send_email(to: str, subject: str, body: str) -> None:
    """Send now: through SMTP, or into instance/outbox/ when no SMTP host is configured."""
    settings = get_settings()
    message = build_message(to, subject, body)
    if not settings.smtp_host:
        outbox = settings.instance_path / "outbox"
        outbox.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}.eml"
        (outbox / name).write_bytes(bytes(message))
        return
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)


def queue_email(to: str, subject: str, body: str) -> None:
    """Send later from a CPU worker, so a slow mail server never slows a page."""
    enqueue_task("jobs.mail.send", to, subject, body, queue=CPU_QUEUE, timeout_s=SEND_TIMEOUT_S)
