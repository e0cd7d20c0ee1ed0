"""Extensions created once and bound to the app with init_app, plus the shared clients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from redis import Redis
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase, Mapper

if TYPE_CHECKING:
    from flask import Flask

    from app.config import Settings
    from storage import Storage


class Base(DeclarativeBase):
    """Declarative base for every model."""


db = SQLAlchemy(model_class=Base)


@event.listens_for(db.Model, "instrument_class", propagate=True)
def _never_reuse_ids(mapper: Mapper[Any], model: type) -> None:
    """SQLite otherwise hands a deleted row's id to the next row, and ids name Redis keys,
    storage prefixes, job ids and ledger segments that may outlive the row (PostgreSQL
    sequences never go back). Migration 0008 rebuilt the existing tables so."""
    table = getattr(model, "__table__", None)
    if table is not None:
        table.dialect_kwargs["sqlite_autoincrement"] = True


migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def init_clients(app: Flask, settings: Settings) -> None:
    """Create the Redis connection and the object storage for this app."""
    from storage import open_storage

    app.extensions["attune.settings"] = settings
    # A Redis that hangs must not hold a web thread: commands and connects give up after the
    # timeout (RedisError, answered 503). RQ workers make their own blocking connection.
    app.extensions["attune.redis"] = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
    )
    app.extensions["attune.storage"] = open_storage(settings.storage_options())


def get_settings() -> Settings:
    """The Settings of the current app."""
    return current_app.extensions["attune.settings"]


def get_redis() -> Redis:
    """The Redis connection of the current app (queues, live progress, rate limits)."""
    return current_app.extensions["attune.redis"]


def get_storage() -> Storage:
    """The object storage of the current app."""
    return current_app.extensions["attune.storage"]
