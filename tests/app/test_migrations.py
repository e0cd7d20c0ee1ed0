"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from app.extensions import db


def test_migrated_schema_matches_the_models(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_migrations_are_at_head(app: Flask) -> None:
    from alembic.script import ScriptDirectory
    from flask import current_app

    with app.app_context(), db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        config = current_app.extensions["migrate"].migrate.get_config()
        head = ScriptDirectory.from_config(config).get_current_head()
    assert current == head


def test_a_deleted_rows_id_is_never_handed_out_again(app: Flask) -> None:
    """SQLite reuses the newest id after a delete unless the table has AUTOINCREMENT; an id
    names Redis keys, storage prefixes, job ids and ledger segments, so it must stay unique."""
    from sqlalchemy import delete, inspect, text

    from app.accounts.models import User
    from tests.app.privacy.support import make_user

    with app.app_context():
        first = make_user("first@example.com")
        db.session.execute(delete(User).where(User.id == first))
        db.session.commit()
        assert make_user("second@example.com") > first
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as connection:
                ddl = dict(connection.execute(text("SELECT name, sql FROM sqlite_master")).all())
                tables = inspect(connection).get_table_names()
            integer_ids = [
                name
                for name in tables
                if name in db.metadata.tables
                and str(db.metadata.tables[name].c.get("id", "").type) == "INTEGER"
            ]
            assert len(integer_ids) == 19  # with api_keys and idempotency_keys
            assert [t for t in integer_ids if "PRIMARY KEY AUTOINCREMENT" not in ddl[t]] == []
