"""Accounts made directly in the database: seeded people, a plan for them, signed-in clients."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.accounts.models import User
from app.accounts.passwords import hash_password
from app.billing.models import Subscription
from app.datasets.models import Dataset
from app.db_types import utcnow
from app.extensions import db
from tests.support.web import GOOD_PASSWORD, csrf_token, sign_in

# One password hash for every seeded account: argon2 is slow on purpose.
_HASHES: dict[str, str] = {}


def activate_plan(app: Flask, email: str, plan: str = "pro", days_left: int = 29) -> None:
    """Give the account an active subscription, as a completed checkout would."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        assert user is not None, email
        now = utcnow()
        db.session.add(
            Subscription(
                user_id=user.id,
                plan=plan,
                status="active",
                current_period_start=now - timedelta(days=30 - days_left),
                current_period_end=now + timedelta(days=days_left),
            )
        )
        db.session.commit()


def seed_user(app: Flask, email: str, admin: bool = False) -> int:
    """An account with GOOD_PASSWORD, created directly in the database; returns its id."""
    if "hash" not in _HASHES:
        _HASHES["hash"] = hash_password(GOOD_PASSWORD)
    with app.app_context():
        user = User(
            email=email,
            name=email.split("@")[0].title(),
            password_hash=_HASHES["hash"],
            adult_confirmed_at=utcnow(),
            is_admin=admin,
        )
        db.session.add(user)
        db.session.commit()
        return user.id


def signed_in_client(app: Flask, email: str) -> FlaskClient:
    """A test client signed in through the real sign-in form."""
    client = app.test_client()
    response = sign_in(client, email)
    assert response.status_code == 302, response.get_data(as_text=True)[-400:]
    return client


def person_with_dataset(app: Flask, name: str) -> tuple[FlaskClient, str, int]:
    """ada@example.com, signed in, with an empty dataset: (client, CSRF token, dataset id)."""
    user_id = seed_user(app, "ada@example.com")
    with app.app_context():
        dataset = Dataset(user_id=user_id, name=name)
        db.session.add(dataset)
        db.session.commit()
        dataset_id = dataset.id
    client = signed_in_client(app, "ada@example.com")
    return client, csrf_token(client.get("/dashboard").text), dataset_id
