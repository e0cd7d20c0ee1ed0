"""Typed settings read from ATTUNE_* environment variables, with embedded defaults.

Embedded mode (the default) needs nothing configured: SQLite and file storage under
instance/, a private Redis started by `make run`, and a SECRET_KEY generated into
instance/secret_key on first start. Production (ATTUNE_ENV=production) refuses to start
with any of those embedded stand-ins.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.plans import DEFAULT_PLANS, Plan, parse_plans
from catalogue.families import FAMILIES

PREFIX = "ATTUNE_"
ENVIRONMENTS = ("development", "testing", "production")
EMBEDDED_REDIS_URL = "redis://127.0.0.1:6389/0"
DERIVED = ("secret_key_is_embedded", "plans")  # computed by load_settings, never read as such

# Each family trains on the queue of its GPU class (one RQ worker per GPU); "tiny:<family>" as
# a source means: build the family's tiny random model under MODELS_DIR on first use.
DEFAULT_FAMILY_QUEUES = {name: facts.gpu_class for name, facts in FAMILIES.items()}
DEFAULT_MODEL_SOURCES = {name: facts.default_source for name, facts in FAMILIES.items()}


class ConfigurationError(RuntimeError):
    """The settings cannot run the service as configured."""


@dataclass(frozen=True)
class Settings:
    """Every setting the service reads; the README's settings table mirrors this class."""

    env: str = "development"
    instance_path: Path = Path("instance")
    secret_key: str = ""
    secret_key_is_embedded: bool = True
    base_url: str = "http://127.0.0.1:5000"
    database_url: str = ""
    redis_url: str = EMBEDDED_REDIS_URL
    redis_timeout_s: int = 5
    storage_backend: str = "local"
    storage_root: Path = Path("instance/storage")
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_public_endpoint_url: str = ""
    s3_region: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_addressing_style: str = "auto"
    s3_connect_timeout_s: int = 5
    s3_read_timeout_s: int = 8
    s3_max_attempts: int = 3
    models_dir: Path = Path("instance/models")
    scratch_dir: Path = Path("instance/scratch")
    family_queues: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FAMILY_QUEUES))
    model_sources: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MODEL_SOURCES))
    enabled_families: tuple[str, ...] = ("tiny-sd",)
    session_cookie_secure: bool = False
    ratelimit_storage_url: str = ""
    login_attempts_per_minute: int = 10
    api_requests_per_minute: int = 600
    upload_url_expiry_s: int = 3600
    free_storage_mb: int = 1024
    caption_model: str = ""
    caption_queue: str = "gpu-24gb"
    # Download links are signed on each click, after the owner check, and used at once (a
    # redirect); short, because an S3 presigned URL cannot be revoked: after an account
    # deletion one works at most this long, or until the erasure removed the bytes.
    download_url_expiry_s: int = 60
    training_job_timeout_s: int = 6 * 3600
    run_heartbeat_interval_s: int = 10
    run_heartbeat_timeout_s: int = 120
    run_max_attempts: int = 3
    trust_proxy_hops: int = 0
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    mail_from: str = "Attune <no-reply@attune.localhost>"
    # Google sign-in (OpenID Connect); the button appears once a client id is set.
    google_client_id: str = ""
    google_client_secret: str = ""
    google_discovery_url: str = "https://accounts.google.com/.well-known/openid-configuration"
    plans_json: str = ""
    plans: tuple[Plan, ...] = DEFAULT_PLANS  # parsed from plans_json once, by load_settings
    past_due_grace_days: int = 7
    billing_mode: str = ""  # "stripe" or "dev"; load_settings picks "stripe" when a key is set
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""  # empty: Stripe itself; tests point it at a local server
    stripe_webhook_tolerance_s: int = 300
    stripe_timeout_s: int = 10
    stripe_max_network_retries: int = 2
    stripe_meter_event_name: str = "attune_gpu_seconds"
    # Webhooks go only to https URLs on public addresses; the two switches are for
    # development and tests, and production refuses to start with either of them on.
    webhooks_allow_http: bool = False
    webhooks_allow_private: bool = False
    webhooks_ca_bundle: str = ""  # empty: the system's trusted certificates
    webhook_timeout_s: int = 10
    # Waits before each retry (Standard Webhooks' schedule: about 28 hours in all).
    webhook_retry_schedule_s: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_progress_interval_s: int = 5
    webhook_log_retention_days: int = 30

    @property
    def is_production(self) -> bool:
        """True when running as the real service rather than on a laptop or in tests."""
        return self.env == "production"

    def flask_config(self) -> dict[str, Any]:
        """The Flask/extension keys derived from these settings."""
        return {
            "SECRET_KEY": self.secret_key,
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
            "SESSION_COOKIE_SECURE": self.session_cookie_secure,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "REMEMBER_COOKIE_SECURE": self.session_cookie_secure,
            "REMEMBER_COOKIE_HTTPONLY": True,
            "REMEMBER_COOKIE_SAMESITE": "Lax",
            "WTF_CSRF_TIME_LIMIT": None,
            "RATELIMIT_STORAGE_URI": self.ratelimit_storage_url or self.redis_url,
            "RATELIMIT_STORAGE_OPTIONS": {
                "socket_timeout": self.redis_timeout_s,
                "socket_connect_timeout": self.redis_timeout_s,
            },
            "RATELIMIT_HEADERS_ENABLED": True,
            "TESTING": self.env == "testing",
            "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
        }

    def storage_options(self) -> dict[str, Any]:
        """Plain values for storage.open_storage()."""
        return {
            "backend": self.storage_backend,
            "root": self.storage_root,
            "base_url": self.base_url.rstrip("/") + "/storage/local",
            "secret": self.secret_key.encode(),
            "bucket": self.s3_bucket,
            "endpoint_url": self.s3_endpoint_url or None,
            "public_endpoint_url": self.s3_public_endpoint_url or None,
            "region": self.s3_region or None,
            "access_key": self.s3_access_key_id or None,
            "secret_key": self.s3_secret_access_key or None,
            "addressing_style": self.s3_addressing_style,
            "connect_timeout_s": self.s3_connect_timeout_s,
            "read_timeout_s": self.s3_read_timeout_s,
            "max_attempts": self.s3_max_attempts,
        }


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build Settings from ATTUNE_* variables, then overrides, then check them."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        raw = environ.get(PREFIX + f.name.upper())
        if raw is not None and f.name not in DERIVED:
            values[f.name] = _parse(f.name, raw)
    values.update(_per_family(environ))
    values.update(overrides or {})
    instance = Path(values.get("instance_path", Settings.instance_path)).resolve()
    values["instance_path"] = instance
    values.setdefault("storage_root", instance / "storage")
    values.setdefault("models_dir", instance / "models")
    values.setdefault("scratch_dir", instance / "scratch")
    values.setdefault("database_url", f"sqlite:///{instance / 'attune.db'}")
    if values.get("env") == "production":
        values.setdefault("session_cookie_secure", True)
    values.setdefault("billing_mode", "stripe" if values.get("stripe_secret_key") else "dev")
    if not values.get("secret_key"):
        values["secret_key"] = _embedded_secret_key(instance)
        values["secret_key_is_embedded"] = True
    else:
        values["secret_key_is_embedded"] = False
    try:
        values["plans"] = parse_plans(values.get("plans_json", ""))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    settings = Settings(**values)
    check_settings(
        settings, explicit_redis=PREFIX + "REDIS_URL" in environ or "redis_url" in (overrides or {})
    )
    return settings


def check_settings(settings: Settings, explicit_redis: bool = True) -> None:
    """Refuse settings that cannot work, and embedded stand-ins in production."""
    if settings.env not in ENVIRONMENTS:
        raise ConfigurationError(f"ATTUNE_ENV must be one of {', '.join(ENVIRONMENTS)}")
    if settings.storage_backend not in ("local", "s3"):
        raise ConfigurationError("ATTUNE_STORAGE_BACKEND must be 'local' or 's3'")
    if settings.storage_backend == "s3" and not settings.s3_bucket:
        raise ConfigurationError("ATTUNE_S3_BUCKET is required with the s3 storage backend")
    _check_billing(settings)
    _check_webhooks(settings)
    unknown = set(settings.enabled_families) - set(settings.family_queues)
    if unknown:
        raise ConfigurationError(
            f"ATTUNE_ENABLED_FAMILIES names unknown families: {sorted(unknown)}"
        )
    if not settings.is_production:
        return
    problems = []
    if settings.secret_key_is_embedded or len(settings.secret_key) < 32:
        problems.append("set ATTUNE_SECRET_KEY to a random value of 32+ characters")
    if settings.database_url.startswith("sqlite"):
        problems.append("set ATTUNE_DATABASE_URL to PostgreSQL; SQLite is for the embedded mode")
    if not explicit_redis or settings.redis_url == EMBEDDED_REDIS_URL:
        problems.append("set ATTUNE_REDIS_URL to the production Redis")
    if settings.storage_backend == "local":
        problems.append("set ATTUNE_STORAGE_BACKEND=s3; local storage is for the embedded mode")
    if not settings.base_url.startswith("https://"):
        problems.append("set ATTUNE_BASE_URL to the public https:// address")
    if settings.billing_mode != "stripe":
        problems.append(
            "set ATTUNE_BILLING_MODE=stripe with ATTUNE_STRIPE_SECRET_KEY and "
            "ATTUNE_STRIPE_WEBHOOK_SECRET; development billing gives plans away"
        )
    if settings.webhooks_allow_http or settings.webhooks_allow_private:
        problems.append(
            "unset ATTUNE_WEBHOOKS_ALLOW_HTTP and ATTUNE_WEBHOOKS_ALLOW_PRIVATE; they let "
            "webhooks reach plain http and private addresses"
        )
    if problems:
        raise ConfigurationError("refusing to start in production: " + "; ".join(problems))


def _check_billing(settings: Settings) -> None:
    """Stripe mode needs its keys; dev mode is only for laptops and tests."""
    if settings.billing_mode not in ("stripe", "dev"):
        raise ConfigurationError("ATTUNE_BILLING_MODE must be 'stripe' or 'dev'")
    if settings.billing_mode == "stripe" and not (
        settings.stripe_secret_key and settings.stripe_webhook_secret
    ):
        raise ConfigurationError(
            "ATTUNE_BILLING_MODE=stripe needs ATTUNE_STRIPE_SECRET_KEY and "
            "ATTUNE_STRIPE_WEBHOOK_SECRET"
        )


def _check_webhooks(settings: Settings) -> None:
    """Delivery timing must make sense: a positive timeout, no negative waits."""
    if settings.webhook_timeout_s < 1 or settings.webhook_progress_interval_s < 0:
        raise ConfigurationError(
            "ATTUNE_WEBHOOK_TIMEOUT_S must be 1 or more and "
            "ATTUNE_WEBHOOK_PROGRESS_INTERVAL_S 0 or more"
        )
    if any(wait < 0 for wait in settings.webhook_retry_schedule_s):
        raise ConfigurationError("ATTUNE_WEBHOOK_RETRY_SCHEDULE_S takes seconds of 0 or more")


def _parse(name: str, raw: str) -> Any:
    """Convert one environment string to the type of the Settings field it sets."""
    default = {f.name: f for f in dataclasses.fields(Settings)}[name]
    kind = default.type
    try:
        if kind == "bool":
            if raw.strip().lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if kind == "int":
            return int(raw)
        if kind == "Path":
            return Path(raw)
        if kind == "tuple[str, ...]":
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if kind == "tuple[int, ...]":
            return tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigurationError(f"{PREFIX}{name.upper()} has an invalid value: {raw!r}") from exc
    return raw


def _per_family(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """ATTUNE_MODEL_<FAMILY> and ATTUNE_QUEUE_<FAMILY> override one family's source or queue."""
    sources, queues = dict(DEFAULT_MODEL_SOURCES), dict(DEFAULT_FAMILY_QUEUES)
    for family, facts in FAMILIES.items():
        suffix = facts.env_suffix
        sources[family] = environ.get(f"{PREFIX}MODEL_{suffix}", sources[family])
        queues[family] = environ.get(f"{PREFIX}QUEUE_{suffix}", queues[family])
    return {"model_sources": sources, "family_queues": queues}


def _embedded_secret_key(instance: Path) -> str:
    """Read instance/secret_key, creating it with a fresh random key on first start."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    # Written aside and linked into place, so processes starting together agree on one key.
    temp = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    try:
        os.link(temp, path)
    except FileExistsError:
        pass
    finally:
        temp.unlink()
    return path.read_text().strip()
