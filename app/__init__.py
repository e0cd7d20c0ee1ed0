"""The Attune web app: create_app() builds it from settings."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from app import security
from app.config import Settings, load_settings
from app.db_types import IdConverter
from app.extensions import csrf, db, init_clients, limiter, login_manager, migrate


def create_app(config: Mapping[str, Any] | Settings | None = None) -> Flask:
    """Build the app; `config` overrides settings by field name (tests) or replaces them."""
    settings = config if isinstance(config, Settings) else load_settings(overrides=config)
    app = Flask(__name__, instance_path=str(settings.instance_path), static_folder="../static")
    app.config.from_mapping(settings.flask_config())
    app.url_map.converters["int"] = IdConverter
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    register_extensions(app, settings)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    security.register(app, settings)
    if settings.trust_proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.trust_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return app


def register_extensions(app: Flask, settings: Settings) -> None:
    """Bind the extensions and create the Redis and storage clients."""
    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    login_manager.init_app(app)
    login_manager.login_view = "accounts.sign_in"
    login_manager.login_message = "Please sign in to continue."
    csrf.init_app(app)
    limiter.init_app(app)
    init_clients(app, settings)
    # Import the models so that metadata and Alembic see every table.
    from app.accounts import models as _accounts  # noqa: F401
    from app.api_v1 import models as _api_v1  # noqa: F401
    from app.apikeys import models as _apikeys  # noqa: F401
    from app.billing import models as _billing  # noqa: F401
    from app.datasets import models as _datasets  # noqa: F401
    from app.trainings import models as _trainings  # noqa: F401
    from app.webhooks import models as _webhooks  # noqa: F401


def register_blueprints(app: Flask) -> None:
    """Mount every feature's blueprint."""
    from app.accounts.settings_routes import bp as account_bp
    from app.accounts.sign_in_routes import bp as accounts_bp
    from app.api_docs import bp as api_docs_bp
    from app.api_v1.routes import bp as api_v1_bp
    from app.apikeys.routes import bp as apikeys_bp
    from app.billing_routes import bp as billing_bp
    from app.datasets.api import bp as datasets_api_bp
    from app.datasets.routes import bp as datasets_bp
    from app.local_storage.routes import bp as local_storage_bp
    from app.pages import bp as pages_bp
    from app.privacy.routes import bp as privacy_bp
    from app.trainings.routes import bp as trainings_bp
    from app.webhooks.routes import bp as webhooks_bp

    app.register_blueprint(pages_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(privacy_bp)
    app.register_blueprint(datasets_bp)
    app.register_blueprint(datasets_api_bp)
    app.register_blueprint(trainings_bp)
    app.register_blueprint(billing_bp)
    app.register_blueprint(local_storage_bp)
    app.register_blueprint(api_docs_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(apikeys_bp)
    app.register_blueprint(api_v1_bp)


def register_errorhandlers(app: Flask) -> None:
    """Friendly pages (or JSON errors for API calls) instead of tracebacks."""
    from app.errors import register

    register(app)


def register_commands(app: Flask) -> None:
    """`flask ...` commands for operators."""
    from app.commands import register

    register(app)


def _migrations_dir() -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"
