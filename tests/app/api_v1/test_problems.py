"""Every /api/v1 error is an RFC 9457 problem: unknown paths, wrong methods, bodies too large,
our own failures and outages of the database and Redis; the browser's JSON API keeps its
{"error": ...} shape."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask

from app import create_app
from app.extensions import get_settings
from tests.app.api_v1.support import Api, assert_problem, create_key_in_browser
from tests.support.apps import running_app
from tests.support.processes import free_port
from tests.support.web import sign_up


def test_http_errors_under_api_v1_are_problems(boom_app: Flask) -> None:
    client = boom_app.test_client()
    sign_up(client)
    api = Api(boom_app, create_key_in_browser(client))
    assert_problem(api.get("/no-such-thing"), 404)
    wrong = api.delete("/trainings")
    assert_problem(wrong, 405)
    assert set(wrong.headers["Allow"].split(", ")) >= {"GET", "POST"}
    boom_app.config["MAX_CONTENT_LENGTH"] = 1000
    assert_problem(api.post("/datasets", {"name": "x" * 2000}), 413)
    failed = api.get("/__boom")
    body = assert_problem(failed, 500)
    assert "deliberate" not in failed.text and "Traceback" not in failed.text
    assert body["title"] == "Internal Server Error"
    # The browser's JSON endpoints keep their own shape.
    old = client.get("/api/runs/999")
    assert old.status_code == 404 and old.mimetype == "application/json"
    assert "error" in old.get_json()


def test_outages_answer_503_problems(request: pytest.FixtureRequest) -> None:
    with running_app(request, "sqlite") as application:
        client = application.test_client()
        sign_up(client)
        key = create_key_in_browser(client)
        with application.app_context():
            settings = get_settings()
    no_db = create_app(replace(settings, database_url="postgresql+psycopg://x@127.0.0.1:1/x"))
    assert_problem(Api(no_db, key).get("/usage"), 503)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    no_redis = create_app(replace(settings, redis_url=dead, ratelimit_storage_url=dead))
    assert_problem(Api(no_redis, key).get("/trainings"), 503)
