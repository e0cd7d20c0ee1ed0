"""Security headers on every response, error pages included."""

from __future__ import annotations

from dataclasses import replace

from flask.testing import FlaskClient

from app.config import load_settings
from app.security import content_security_policy


def test_pages_and_errors_carry_the_security_headers(client: FlaskClient) -> None:
    for path in ("/", "/sign-in", "/no-such-page", "/api/runs/999999"):
        response = client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert (
            "script-src 'self'" in csp
            and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        )
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in response.headers  # not in development


def test_no_inline_scripts_in_any_template() -> None:
    import re
    from pathlib import Path

    templates = Path(__file__).resolve().parents[2] / "app" / "templates"
    for template in templates.rglob("*.html"):
        for tag in re.findall(r"<script\b[^>]*>", template.read_text()):
            assert "src=" in tag, f"{template.name} has an inline script, which the CSP blocks"
        assert not re.search(r"\son[a-z]+=\"", template.read_text()), (
            f"{template.name} inline handler"
        )


def test_s3_origin_is_allowed_for_direct_uploads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = replace(
        load_settings({"ATTUNE_INSTANCE_PATH": str(tmp_path)}),
        storage_backend="s3",
        s3_bucket="b",
        s3_public_endpoint_url="https://files.example.com:9000/",
    )
    policy = content_security_policy(settings)
    assert "connect-src 'self' https://files.example.com:9000" in policy
    assert "img-src 'self' data: blob: https://files.example.com:9000" in policy
