"""Security headers on every response, error pages included."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response

from app.config import Settings


def content_security_policy(settings: Settings) -> str:
    """Only our own origin, plus the bucket's when browsers talk to S3 directly."""
    storage = ""
    endpoint = settings.s3_public_endpoint_url or settings.s3_endpoint_url
    if settings.storage_backend == "s3":
        if endpoint:
            parts = urlsplit(endpoint)
            storage = f" {parts.scheme}://{parts.netloc}"
        else:
            storage = " https://*.amazonaws.com"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            # Uppy's Dashboard sets style attributes; styles cannot run code.
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: blob:{storage}",
            f"media-src 'self' blob:{storage}",
            f"connect-src 'self'{storage}",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self' https://checkout.stripe.com https://billing.stripe.com",
            "frame-ancestors 'none'",
        ]
    )


def register(app: Flask, settings: Settings) -> None:
    """Add the headers after every request."""
    policy = content_security_policy(settings)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if settings.is_production:
            headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        return response
