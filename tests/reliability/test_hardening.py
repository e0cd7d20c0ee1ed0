"""Hardening: headers on every response (errors too), Secure cookies and HSTS in production,
proxy headers trusted only when configured, and limits that are all documented."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from werkzeug.test import TestResponse

from app import create_app
from app.extensions import get_settings
from tests.support.accounts import seed_user
from tests.support.apps import running_app
from tests.support.network import BlackHole
from tests.support.web import csrf_token, sign_in

REPO = Path(__file__).resolve().parents[2]


def assert_hardened(response: TestResponse, what: str) -> None:
    """The headers every response must carry."""
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, what
    assert "object-src 'none'" in csp, what
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("X-Frame-Options") == "DENY", what
    assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), what


def test_every_kind_of_response_carries_the_security_headers(boom_app: Flask) -> None:
    seed_user(boom_app, "ada@example.com")
    client = boom_app.test_client()
    token = csrf_token(client.get("/sign-in").text)
    responses = {
        "page": client.get("/sign-in"),
        "redirect": client.get("/dashboard"),
        "json": client.get("/healthz"),
        "static": client.get("/static/css/attune.css"),
        "404 page": client.get("/no-such-page"),
        "404 json": client.get("/api/runs/999999"),
        "405": client.delete("/sign-in"),
        "400 csrf": client.post("/sign-in", data={"email": "a@b.c", "password": "x"}),
        "422 form": client.post("/sign-in", data={"csrf_token": token}),
        "500": client.get("/__boom"),
        "500 json": client.get("/__boom", headers={"Accept": "application/json"}),
    }
    for _ in range(11):  # the eleventh failed sign-in for one account is refused
        last = client.post(
            "/sign-in",
            data={"csrf_token": token, "email": "ada@example.com", "password": "wrong" * 3},
        )
    responses["429"] = last
    for what, response in responses.items():
        assert_hardened(response, what)
    assert responses["500"].status_code == 500
    assert "Traceback" not in responses["500"].text and "deliberate" not in responses["500"].text
    assert responses["500 json"].get_json()["status"] == 500
    assert responses["429"].status_code == 429
    assert responses["405"].status_code == 405


def test_database_and_redis_outages_are_503_pages_with_headers(
    request: pytest.FixtureRequest,
) -> None:
    from tests.support.processes import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    with running_app(request, "sqlite") as application:
        seed_user(application, "ada@example.com")
        client = application.test_client()
        assert sign_in(client, "ada@example.com").status_code == 302
        settings = get_settings_of(application)
        cookie = client.get_cookie("session")
        assert cookie is not None
    # The same session against a database that is gone, then against a Redis that is gone.
    no_db = create_app(replace(settings, database_url="postgresql+psycopg://x@127.0.0.1:1/x"))
    for path in ("/dashboard", "/api/runs/1", "/datasets/1"):
        signed_in = no_db.test_client()
        signed_in.set_cookie("session", cookie.value)
        response = signed_in.get(path)
        assert response.status_code == 503, (path, response.status_code)
        assert "briefly unavailable" in response.text and "Traceback" not in response.text
        assert_hardened(response, f"database outage {path}")
    no_redis = create_app(replace(settings, redis_url=dead, ratelimit_storage_url=dead))
    stranger = no_redis.test_client()
    token = csrf_token(stranger.get("/sign-in").text)
    response = stranger.post("/sign-in", data={"csrf_token": token, "email": "a@b.cd"})
    assert response.status_code == 503, response.status_code
    assert "briefly unavailable" in response.text and "Traceback" not in response.text
    assert_hardened(response, "redis outage")


def test_a_redis_that_hangs_gets_a_503_within_its_timeout(request: pytest.FixtureRequest) -> None:
    with running_app(request, "sqlite") as application:
        settings = get_settings_of(application)
    hung = BlackHole()
    try:
        app = create_app(
            replace(settings, redis_url=hung.url, ratelimit_storage_url=hung.url, redis_timeout_s=1)
        )
        stranger = app.test_client()
        token = csrf_token(stranger.get("/sign-in").text)
        for path, form in (("/sign-in", {"email": "a@b.cd", "password": "x" * 12}),
                           ("/forgot-password", {"email": "a@b.cd"})):  # fmt: skip
            started = time.monotonic()
            response = stranger.post(path, data={"csrf_token": token, **form})
            waited = time.monotonic() - started
            assert response.status_code == 503, (path, response.status_code)
            assert "briefly unavailable" in response.text
            assert waited < 5, (path, waited)  # not the 30 s gunicorn timeout
        assert hung.held, "the app never reached the hung Redis"
    finally:
        hung.close()


def get_settings_of(application: Flask):  # type: ignore[no-untyped-def]
    """The Settings an app was built with."""
    with application.app_context():
        return get_settings()


def test_production_sends_secure_cookies_and_hsts(request: pytest.FixtureRequest) -> None:
    with running_app(request, "sqlite") as application:
        seed_user(application, "ada@example.com")
        settings = get_settings_of(application)
        production = create_app(
            replace(
                settings,
                env="production",
                session_cookie_secure=True,
                base_url="https://attune.example",
            )
        )
        client = production.test_client()
        https = {"base_url": "https://attune.example"}
        page = client.get("/sign-in", **https)
        assert "max-age=63072000" in page.headers["Strict-Transport-Security"]
        response = client.post(
            "/sign-in",
            data={"csrf_token": csrf_token(page.text), "email": "ada@example.com",
                  "password": "correct horse battery staple"},
            headers={"Referer": "https://attune.example/sign-in"},  # checked over https
            **https,
        )  # fmt: skip
        assert response.status_code == 302, response.text[-300:]
        cookies = response.headers.getlist("Set-Cookie")
        session_cookies = [c for c in cookies if c.startswith(("session=", "remember_token="))]
        assert session_cookies
        for cookie in session_cookies:
            assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Strict-Transport-Security" in response.headers
        # Development (the embedded mode) does not claim https.
        plain = application.test_client().get("/sign-in")
        assert "Strict-Transport-Security" not in plain.headers
        assert all("Secure" not in c for c in plain.headers.getlist("Set-Cookie"))


def _forgot(client: FlaskClient, token: str, forwarded_for: str) -> int:
    """A forgot-password request for a new address each time (the IP limit is 10 a minute)."""
    _forgot.sent += 1  # type: ignore[attr-defined]
    return client.post(
        "/forgot-password",
        data={"csrf_token": token, "email": f"nobody{_forgot.sent}@example.com"},  # type: ignore[attr-defined]
        headers={"X-Forwarded-For": forwarded_for},
    ).status_code


_forgot.sent = 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("hops", [0, 1])
def test_forwarded_for_is_trusted_only_when_configured(
    request: pytest.FixtureRequest, hops: int
) -> None:
    with running_app(request, "sqlite", {"trust_proxy_hops": hops}) as application:
        client = application.test_client()
        token = csrf_token(client.get("/forgot-password").text)
        # Twelve requests, each claiming another address.
        rotating = [_forgot(client, token, f"203.0.113.{n}") for n in range(12)]
        if hops == 0:
            # Ignored: all twelve come from 127.0.0.1, so the eleventh is limited.
            assert rotating[:10] == [200] * 10 and rotating[10:] == [429, 429]
            return
        # Honoured: each address has its own allowance...
        assert 429 not in rotating
        # ...and one address is still limited after ten.
        same = [_forgot(client, token, "198.51.100.7") for _ in range(11)]
        assert same[:10] == [200] * 10 and same[10] == 429
        # Only the hop our proxy appended is trusted: entries a client put in front are not.
        spoofed = [_forgot(client, token, f"10.9.9.{n}, 198.51.100.7") for n in range(2)]
        assert spoofed == [429, 429]


# ---- every limit is documented ------------------------------------------------------------

_LIMIT = re.compile(r'@limiter\.limit\(\s*(?:"([^"]+)"|(\w+))')
# A limit on a whole blueprint: limiter.limit(...)(bp) or limiter.shared_limit(...)(bp).
_BLUEPRINT_LIMIT = re.compile(
    r'^limiter\.(?:shared_)?limit\(\s*(?:"([^"]+)"|(\w+)).*\)\(bp\)$', re.M
)
_ROUTE = re.compile(r'@bp\.route\("([^"]*)"')
_PREFIX = re.compile(r'Blueprint\([^)]*url_prefix="([^"]+)"')
# Limits computed from a setting, by the name of the function that reads it.
DYNAMIC_LIMITS = {
    "_sign_in_limit": "ATTUNE_LOGIN_ATTEMPTS_PER_MINUTE",
    "api_rate_limit": "ATTUNE_API_REQUESTS_PER_MINUTE",
}


def _blueprint_prefix(source: Path, text: str) -> str:
    """The url_prefix of the blueprint a module's routes hang on (also when imported)."""
    match = _PREFIX.search(text)
    if match:
        return match.group(1)
    imported = re.search(r"^from (app\.[\w.]+) import bp$", text, re.M)
    if imported:
        module = REPO / (imported.group(1).replace(".", "/") + ".py")
        match = _PREFIX.search(module.read_text())
    return match.group(1) if match else ""


def code_limits() -> list[tuple[str, str]]:
    """(path, limit) for every limiter.limit in app/; dynamic limits by their function name."""
    found = []
    for source in sorted((REPO / "app").rglob("*.py")):
        text = source.read_text()
        prefix = _blueprint_prefix(source, text)
        for match in _BLUEPRINT_LIMIT.finditer(text):
            found.append((prefix + "/*", match.group(1) or match.group(2)))
        marks = [(m.start(), "route", m.group(1)) for m in _ROUTE.finditer(text)]
        marks += [(m.start(), "limit", m.group(1) or m.group(2)) for m in _LIMIT.finditer(text)]
        marks += [(m.start(), "def", "") for m in re.finditer(r"^def ", text, re.M)]
        route = None
        for _, kind, value in sorted(marks):
            if kind == "route":
                route = prefix + value
            elif kind == "limit" and route is not None:
                found.append((route, value))
            elif kind == "def":
                route = None
    return found


def test_every_rate_limit_is_listed_in_the_readme() -> None:
    limits = code_limits()
    assert len(limits) >= 12, limits
    readme = (REPO / "README.md").read_text()
    assert "## Rate limits" in readme
    section = readme.split("## Rate limits", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    missing = []
    for path, limit in limits:
        wanted = DYNAMIC_LIMITS.get(limit, limit)
        if not any(f"`{path}`" in row and wanted in row for row in rows):
            missing.append(f"{path}: {wanted}")
    assert not missing, "README 'Rate limits' lacks: " + "; ".join(missing)


def test_flushing_redis_resets_limits_but_never_breaks_sign_in(rel_app: Flask) -> None:
    """Limits live in Redis; losing it forgets counts (documented) and nothing fails."""
    seed_user(rel_app, "ada@example.com")
    client = rel_app.test_client()
    token = csrf_token(client.get("/sign-in").text)
    bad = {"csrf_token": token, "email": "ada@example.com", "password": "wrong" * 3}
    statuses = [client.post("/sign-in", data=bad).status_code for _ in range(11)]
    assert statuses[-1] == 429
    with rel_app.app_context():
        Redis.from_url(get_settings().redis_url).flushdb()
    assert client.post("/sign-in", data=bad).status_code == 422
    assert sign_in(client, "ada@example.com").status_code == 302


@pytest.mark.parametrize(
    "target", ["///evil.example", "////evil.example/x", "/\t/evil.example", "//evil.example"]
)
def test_sign_in_never_sends_people_to_another_site(rel_app: Flask, target: str) -> None:
    """Browsers read "///host" as another site although urlsplit sees no host (found here)."""
    seed_user(rel_app, "ada@example.com")
    client = rel_app.test_client()
    token = csrf_token(client.get("/sign-in").text)
    response = client.post(
        "/sign-in",
        query_string={"next": target},
        data={"csrf_token": token, "email": "ada@example.com",
              "password": "correct horse battery staple"},
    )  # fmt: skip
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"


@pytest.mark.parametrize("huge", [2**31, 12525519581, 2**80])
def test_ids_too_large_for_the_database_are_refused_not_500(any_db_app: Flask, huge: int) -> None:
    """Found by the fuzzer: SQLite raised OverflowError for ids past 2**63, PostgreSQL refused
    ids past 2**31 (its INTEGER), both as 500s."""
    seed_user(any_db_app, "ada@example.com")
    client = any_db_app.test_client()
    assert sign_in(client, "ada@example.com").status_code == 302
    token = csrf_token(client.get("/dashboard").text)
    for path in (f"/api/runs/{huge}", f"/datasets/{huge}", f"/api/datasets/{huge}/items",
                 f"/api/datasets/{huge}/bucket-preview", f"/api/generations/{huge}"):  # fmt: skip
        assert client.get(path).status_code == 404, path
    assert client.get(f"/runs/new?from={huge}").status_code in (400, 404)
    started = client.post(
        "/api/runs",
        json={"dataset_id": huge, "family": "tiny-sd", "params": {}},
        headers={"X-CSRFToken": token},
    )
    assert started.status_code in (400, 404), started.status_code
    assert started.get_json()["error"]
    deletion = client.post(
        "/my-data/delete", data={"csrf_token": token, "scope": "dataset", "target_id": str(huge)}
    )
    assert deletion.status_code in (302, 400, 404)
    assert client.get("/dashboard").status_code == 200  # the session is still usable
