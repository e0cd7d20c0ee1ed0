"""Settings: embedded defaults, environment parsing, and production's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigurationError, load_settings


def test_embedded_defaults_live_under_instance(tmp_path: Path) -> None:
    settings = load_settings({"ATTUNE_INSTANCE_PATH": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'attune.db'}"
    assert settings.storage_backend == "local"
    assert settings.storage_root == tmp_path / "storage"
    assert settings.enabled_families == ("tiny-sd",)
    assert settings.family_queues["tiny-sd"] == "gpu-cpu"


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = load_settings({"ATTUNE_INSTANCE_PATH": str(tmp_path)})
    second = load_settings({"ATTUNE_INSTANCE_PATH": str(tmp_path)})
    assert first.secret_key == second.secret_key
    assert len(first.secret_key) >= 48
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_environment_values_are_typed(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "ATTUNE_INSTANCE_PATH": str(tmp_path),
            "ATTUNE_SESSION_COOKIE_SECURE": "true",
            "ATTUNE_LOGIN_ATTEMPTS_PER_MINUTE": "5",
            "ATTUNE_ENABLED_FAMILIES": "tiny-sd, sdxl",
            "ATTUNE_MODEL_SDXL": "/models/sdxl",
            "ATTUNE_QUEUE_SDXL": "gpu-h100",
        }
    )
    assert settings.session_cookie_secure is True
    assert settings.login_attempts_per_minute == 5
    assert settings.enabled_families == ("tiny-sd", "sdxl")
    assert settings.model_sources["sdxl"] == "/models/sdxl"
    assert settings.family_queues["sdxl"] == "gpu-h100"


@pytest.mark.parametrize(
    ("name", "value"),
    [("ATTUNE_LOGIN_ATTEMPTS_PER_MINUTE", "many"), ("ATTUNE_SESSION_COOKIE_SECURE", "maybe"),
     ("ATTUNE_ENV", "staging"), ("ATTUNE_STORAGE_BACKEND", "ftp"),
     ("ATTUNE_ENABLED_FAMILIES", "sd99")],
)  # fmt: skip
def test_bad_values_are_refused_with_the_variable_named(
    tmp_path: Path, name: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match="ATTUNE_"):
        load_settings({"ATTUNE_INSTANCE_PATH": str(tmp_path), name: value})


def test_production_refuses_embedded_stand_ins(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as error:
        load_settings({"ATTUNE_INSTANCE_PATH": str(tmp_path), "ATTUNE_ENV": "production"})
    message = str(error.value)
    for needed in ("ATTUNE_SECRET_KEY", "ATTUNE_DATABASE_URL", "ATTUNE_REDIS_URL",
                   "ATTUNE_STORAGE_BACKEND", "ATTUNE_BASE_URL"):  # fmt: skip
        assert needed in message


def production_environment(tmp_path: Path) -> dict[str, str]:
    """Every variable production needs, pointing at real (made-up) services."""
    return {
        "ATTUNE_INSTANCE_PATH": str(tmp_path),
        "ATTUNE_ENV": "production",
        "ATTUNE_SECRET_KEY": "k" * 40,
        "ATTUNE_DATABASE_URL": "postgresql+psycopg://attune@db/attune",
        "ATTUNE_REDIS_URL": "redis://redis:6379/0",
        "ATTUNE_STORAGE_BACKEND": "s3",
        "ATTUNE_S3_BUCKET": "attune",
        "ATTUNE_BASE_URL": "https://attune.example",
        "ATTUNE_STRIPE_SECRET_KEY": "sk_live_x",
        "ATTUNE_STRIPE_WEBHOOK_SECRET": "whsec_x",
    }


def test_production_starts_with_real_services(tmp_path: Path) -> None:
    settings = load_settings(production_environment(tmp_path))
    assert settings.session_cookie_secure is True
    assert not (tmp_path / "secret_key").exists()
    assert (settings.webhooks_allow_http, settings.webhooks_allow_private) == (False, False)


@pytest.mark.parametrize("switch", ["ATTUNE_WEBHOOKS_ALLOW_HTTP", "ATTUNE_WEBHOOKS_ALLOW_PRIVATE"])
def test_production_refuses_the_webhook_development_switches(tmp_path: Path, switch: str) -> None:
    with pytest.raises(ConfigurationError, match=switch):
        load_settings({**production_environment(tmp_path), switch: "true"})


def test_webhook_timing_is_read_and_checked(tmp_path: Path) -> None:
    base = {"ATTUNE_INSTANCE_PATH": str(tmp_path)}
    settings = load_settings({**base, "ATTUNE_WEBHOOK_RETRY_SCHEDULE_S": "1, 60,3600"})
    assert settings.webhook_retry_schedule_s == (1, 60, 3600)
    assert load_settings(base).webhook_retry_schedule_s == (5, 300, 1800, 7200, 18000, 36000, 36000)
    for name, value in [("ATTUNE_WEBHOOK_RETRY_SCHEDULE_S", "5,soon"),
                        ("ATTUNE_WEBHOOK_RETRY_SCHEDULE_S", "5,-1"),
                        ("ATTUNE_WEBHOOK_TIMEOUT_S", "0")]:  # fmt: skip
        with pytest.raises(ConfigurationError, match=name):
            load_settings({**base, name: value})
