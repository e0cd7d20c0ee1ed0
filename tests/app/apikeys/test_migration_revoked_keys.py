"""Revision 0010: keys revoked before revoking deleted them are deleted; the others still work."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import inspect, text

from app import create_app
from app.accounts.models import User
from app.apikeys.models import ApiKey
from app.apikeys.services import KeyRefused, authenticate_key, hash_key
from app.db_types import utcnow
from app.extensions import db
from tests.support.apps import DATABASES, settings_overrides

KEY_ROW = text(
    "INSERT INTO api_keys (user_id, name, prefix, key_hash, scopes, created_at, revoked_at)"
    " VALUES (:user_id, :name, 'att_live_abcdef', :hash, 'read write', CURRENT_TIMESTAMP,"
    " :revoked_at)"
)


@pytest.fixture(params=DATABASES)
def app_at_0009(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The app on a fresh database migrated only as far as revision 0009."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keys.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database(
            f"keys_{uuid.uuid4().hex[:12]}"
        )
    application = create_app(settings_overrides(request, url))
    with application.app_context():
        upgrade(revision="0009")
        yield application
        db.session.remove()
        db.engine.dispose()


def test_keys_revoked_before_0010_are_deleted_and_the_others_keep_working(
    app_at_0009: Flask,
) -> None:
    user = User(email="ada@example.com", name="Ada", adult_confirmed_at=utcnow())
    db.session.add(user)
    db.session.commit()
    working, revoked = "att_live_" + "a" * 43, "att_live_" + "b" * 43
    for name, key, revoked_at in (("laptop", working, None), ("old", revoked, utcnow())):
        db.session.execute(KEY_ROW, {"user_id": user.id, "name": name, "hash": hash_key(key),
                                     "revoked_at": revoked_at})  # fmt: skip
    db.session.commit()

    upgrade()
    assert "revoked_at" not in {c["name"] for c in inspect(db.engine).get_columns("api_keys")}
    assert [row.name for row in db.session.query(ApiKey)] == ["laptop"]
    assert authenticate_key(working)[1].email == "ada@example.com"
    with pytest.raises(KeyRefused) as refused:
        authenticate_key(revoked)
    assert refused.value.reason == "unknown"
