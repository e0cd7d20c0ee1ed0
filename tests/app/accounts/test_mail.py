"""E-mail goes through a real SMTP server, or to the outbox folder when none is configured."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from app.accounts.mail import send_email
from app.extensions import get_settings
from tests.support.smtp import SmtpServer


def test_email_is_delivered_over_smtp(app: Flask, mailbox: SmtpServer) -> None:
    with app.app_context():
        send_email(
            "ada@example.com", "Your run finished", "Download it from Attune.", account_id=None
        )
    message = mailbox.wait_for(1)[0]
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Your run finished"
    assert "Download it" in message.get_content()


def test_without_smtp_mail_lands_in_the_outbox(app: Flask) -> None:
    from dataclasses import replace

    with app.app_context():
        settings = get_settings()
        app.extensions["attune.settings"] = replace(settings, smtp_host="")
        send_email("ada@example.com", "Hello", "Body", account_id=None)
        outbox = Path(settings.instance_path) / "outbox"
        files = list(outbox.glob("*.eml"))
    assert len(files) == 1
    assert b"Subject: Hello" in files[0].read_bytes()
