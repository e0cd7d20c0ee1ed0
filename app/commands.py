"""Operator commands: `flask ...`."""

from __future__ import annotations

import click
from flask import Flask


def register(app: Flask) -> None:
    """Attach the commands to `app`."""

    @app.cli.command("create-admin")
    @click.argument("email")
    def create_admin(email: str) -> None:
        """Give an existing account admin rights."""
        from sqlalchemy import select

        from app.accounts.models import User
        from app.extensions import db

        user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise click.ClickException(f"no account with e-mail {email}")
        user.is_admin = True
        db.session.commit()
        click.echo(f"{user.email} is now an admin")

    @app.cli.group("retention")
    def retention_group() -> None:
        """Data retention (the hourly job runs the same pass)."""

    @retention_group.command("run")
    @click.option("--now", "now_text", default=None, help="Pretend it is this UTC time (ISO 8601).")
    def retention_run(now_text: str | None) -> None:
        """Apply the retention rules now, in this process: warn, delete, expire exports."""
        from datetime import UTC, datetime

        from app.privacy.retention import apply_retention

        now = None
        if now_text:
            try:
                now = datetime.fromisoformat(now_text)
            except ValueError as exc:
                raise click.BadParameter(f"not an ISO 8601 time: {now_text}") from exc
            now = now if now.tzinfo else now.replace(tzinfo=UTC)
        report = apply_retention(now)
        click.echo(
            ", ".join(f"{key}: {value}" for key, value in sorted(report.items())) or "nothing to do"
        )
