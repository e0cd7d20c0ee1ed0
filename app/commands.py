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
