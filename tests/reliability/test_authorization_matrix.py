"""Every route in the URL map, called by the owner, another person, an admin and a stranger.

The list of routes comes from app.url_map, so a new route is covered the day it is added: a
public one must be named in PUBLIC below, everything else must refuse strangers.

Intended rules (RELIABILITY.md, "Authorization matrix"):
- anonymous: public pages answer; everything else redirects to sign-in (never data, never 500)
- another person: 404 for anything addressed by an id they do not own
- admin (User.is_admin): no extra power in the web app; treated exactly like another person
  (is_admin only marks accounts for operators' `flask` commands)
- owner: never 404 for their own ids, never 500
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from tests.conftest import csrf_token
from tests.reliability.conftest import World, build_world, seed_user, signed_in_client

# Endpoints anyone may call: public pages, sign-in flows, signed-token links, the webhook
# (checked by its Stripe signature), static files and the API description.
PUBLIC = {
    "pages.index", "pages.healthz", "billing.pricing", "privacy.policy", "static",
    "accounts.sign_up", "accounts.sign_in", "accounts.forgot_password",
    "accounts.reset_password", "accounts.verify_email", "account.confirm_email",
    "accounts.google_start", "accounts.google_callback", "accounts.google_sign_up",
    "billing.webhook", "local_storage.upload", "local_storage.download", "api_docs.openapi",
}  # fmt: skip
OWNED_PARAMS = {"dataset_id", "item_id", "run_id", "generation_id", "export_id", "endpoint_id"}
# Run last, in this order, so they do not pull the world from under the other calls.
LAST = [
    "webhooks.delete",
    "datasets_api.abort_upload",
    "datasets.delete_item",
    "datasets.delete",
    "accounts.sign_out",
]
_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def calls(app: Flask) -> list[tuple[Rule, str]]:
    """(rule, method) for every route, destructive ones last."""
    found = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    ]
    order = {endpoint: index + 1 for index, endpoint in enumerate(LAST)}
    return sorted(found, key=lambda call: (order.get(call[0].endpoint, 0), call[0].rule))


def url_for_rule(rule: Rule, world: World) -> str:
    """The rule's path with every parameter filled from the owner's world."""
    values = world.path_values()
    if rule.endpoint == "trainings.generation_media":
        values["name"] = world.media_name
    return _PARAM.sub(lambda match: str(values[match.group(1)]), rule.rule)


def send(client: FlaskClient, token: str, method: str, url: str) -> TestResponse:
    """One request as the page would send it: CSRF token included, empty body."""
    if method in ("GET", "DELETE") and not url.startswith("/api/"):
        return client.open(url, method=method)
    headers = {"X-CSRFToken": token}
    if url.startswith(("/api/", "/storage/")):
        return client.open(url, method=method, json={}, headers=headers)
    return client.open(url, method=method, data={"csrf_token": token}, headers=headers)


def refused_to_stranger(url: str, response: TestResponse) -> bool:
    """Pages redirect to sign-in, the JSON API answers 401 JSON (or 404): no data."""
    if url.startswith("/api/"):
        return response.status_code in (401, 404) and "error" in (response.get_json() or {})
    if response.status_code == 302:
        return "/sign-in" in response.headers["Location"]
    return response.status_code in (401, 404)


def test_every_route_for_owner_other_admin_and_anonymous(any_db_app: Flask) -> None:
    world = build_world(any_db_app)
    seed_user(any_db_app, "other@example.com")
    seed_user(any_db_app, "admin@example.com", admin=True)
    actors: dict[str, FlaskClient] = {
        "anonymous": any_db_app.test_client(),
        "other": signed_in_client(any_db_app, "other@example.com"),
        "admin": signed_in_client(any_db_app, "admin@example.com"),
        "owner": signed_in_client(any_db_app, "owner@example.com"),
    }
    tokens = {
        name: csrf_token(client.get("/dashboard" if name != "anonymous" else "/sign-in").text)
        for name, client in actors.items()
    }
    endpoints = {rule.endpoint for rule in any_db_app.url_map.iter_rules()}
    assert endpoints >= PUBLIC, f"PUBLIC names unknown endpoints: {PUBLIC - endpoints}"

    matrix: dict[str, dict[str, int]] = {}
    problems: list[str] = []
    for name, client in actors.items():  # the owner goes last: their calls change the world
        for rule, method in calls(any_db_app):
            url = url_for_rule(rule, world)
            response = send(client, tokens[name], method, url)
            status = response.status_code
            label = f"{method} {rule.rule}"
            matrix.setdefault(label, {})[name] = status
            owned = bool(OWNED_PARAMS & set(rule.arguments))
            problem = _judge(name, rule, url, owned, response)
            if problem:
                problems.append(f"{name:9} {label} -> {status}: {problem}")
    _maybe_write(matrix)
    assert not problems, "\n".join(problems)
    assert len(matrix) >= 70  # the whole map was walked


def _judge(actor: str, rule: Rule, url: str, owned: bool, response: TestResponse) -> str | None:
    status = response.status_code
    if status >= 500:
        return "server error"
    if actor == "anonymous":
        if rule.endpoint not in PUBLIC and not refused_to_stranger(url, response):
            return "a stranger was not sent to sign in"
        return None
    if actor in ("other", "admin") and owned and status != 404:
        return "someone else's object did not answer 404"
    if actor == "owner" and owned and status == 404:
        return "the owner could not reach their own object"
    return None


def _maybe_write(matrix: dict[str, dict[str, Any]]) -> None:
    """ATTUNE_MATRIX_OUT=path writes the observed matrix as JSON (for RELIABILITY.md)."""
    target = os.environ.get("ATTUNE_MATRIX_OUT")
    if target:
        with open(target, "w") as handle:
            json.dump(matrix, handle, indent=1, sort_keys=True)


def test_revoked_and_forged_sessions_are_strangers(any_db_app: Flask) -> None:
    world = build_world(any_db_app)
    owner = signed_in_client(any_db_app, "owner@example.com")
    laptop = signed_in_client(any_db_app, "owner@example.com")  # a second device
    token = csrf_token(owner.get("/dashboard").text)
    assert owner.post("/sign-out", data={"csrf_token": token}).status_code == 302
    # Signing out revokes every session on the server: the other device is a stranger now.
    for client in (owner, laptop):
        for path in (f"/api/runs/{world.run_id}", f"/datasets/{world.dataset_id}", "/dashboard"):
            assert refused_to_stranger(path, client.get(path)), path
    forged = any_db_app.test_client()
    forged.set_cookie("session", "eyJfdXNlcl9pZCI6IjE6MSJ9.forged.signature")
    assert refused_to_stranger(f"/api/runs/{world.run_id}", forged.get(f"/api/runs/{world.run_id}"))
