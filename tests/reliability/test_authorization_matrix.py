"""Every route in the URL map, called by the owner, another person, an admin and a stranger;
then every /api/v1 operation with the owner's key, another person's key, a revoked key, a
read-only key and no key.

The list of routes comes from app.url_map, so a new route is covered the day it is added: a
public one must be named in PUBLIC below, everything else must refuse strangers.

Intended rules (RELIABILITY.md, "Authorization matrix"):
- anonymous: public pages answer; everything else redirects to sign-in (never data, never 500)
- another person: 404 for anything addressed by an id they do not own
- admin (User.is_admin): no extra power in the web app; treated exactly like another person
  (is_admin only marks accounts for operators' `flask` commands)
- owner: never 404 for their own ids, never 500
- /api/v1 takes keys only: a session (anyone's, the owner's too) is a stranger there (401)
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

from app.extensions import db
from tests.support.accounts import seed_user, signed_in_client
from tests.support.web import csrf_token
from tests.support.world import World, build_world

# Endpoints anyone may call: public pages, sign-in flows, signed-token links, the webhook
# (checked by its Stripe signature), static files and the API description.
PUBLIC = {
    "pages.index", "pages.healthz", "billing.pricing", "privacy.policy", "static",
    "accounts.sign_up", "accounts.sign_in", "accounts.forgot_password",
    "accounts.reset_password", "accounts.verify_email", "account.confirm_email",
    "accounts.google_start", "accounts.google_callback", "accounts.google_sign_up",
    "billing.webhook", "local_storage.upload", "local_storage.download", "api_docs.openapi",
    "api_docs.reference",
}  # fmt: skip
OWNED_PARAMS = {
    "dataset_id", "item_id", "run_id", "generation_id", "export_id", "endpoint_id", "key_id",
}  # fmt: skip
# Run last, in this order, so they do not pull the world from under the other calls.
LAST = [
    "webhooks.delete",
    "api_v1.abort_upload",
    "datasets_api.abort_upload",
    "datasets.delete_item",
    "datasets.delete",
    "apikeys.revoke",
    "accounts.sign_out",
    "accounts.sign_out_everywhere",
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
    """Pages redirect to sign-in, the JSON API answers 401 JSON (or 404), /api/v1 a 401
    problem: no data."""
    if url.startswith("/api/v1/"):
        body = response.get_json(silent=True) or {}
        return response.status_code == 401 and body.get("reason") == "missing"
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
    if url.startswith("/api/v1/"):
        return None if refused_to_stranger(url, response) else "a session opened /api/v1"
    if actor == "anonymous":
        if rule.endpoint not in PUBLIC and not refused_to_stranger(url, response):
            return "a stranger was not sent to sign in"
        return None
    if actor in ("other", "admin") and owned and status != 404:
        return "someone else's object did not answer 404"
    if actor == "owner" and owned and status == 404:
        return "the owner could not reach their own object"
    return None


def _maybe_write(matrix: dict[str, dict[str, Any]], suffix: str = "") -> None:
    """ATTUNE_MATRIX_OUT=path writes the observed matrix as JSON (for RELIABILITY.md)."""
    target = os.environ.get("ATTUNE_MATRIX_OUT")
    if target:
        with open(target + suffix, "w") as handle:
            json.dump(matrix, handle, indent=1, sort_keys=True)


def test_revoked_and_forged_sessions_are_strangers(any_db_app: Flask) -> None:
    world = build_world(any_db_app)
    owner = signed_in_client(any_db_app, "owner@example.com")
    laptop = signed_in_client(any_db_app, "owner@example.com")  # a second device
    token = csrf_token(owner.get("/dashboard").text)
    assert owner.post("/sign-out/everywhere", data={"csrf_token": token}).status_code == 302
    # Signing out everywhere revokes every session on the server: the other device is a
    # stranger now.
    for client in (owner, laptop):
        for path in (f"/api/runs/{world.run_id}", f"/datasets/{world.dataset_id}", "/dashboard"):
            assert refused_to_stranger(path, client.get(path)), path
    forged = any_db_app.test_client()
    forged.set_cookie("session", "eyJfdXNlcl9pZCI6IjE6MSJ9.forged.signature")
    assert refused_to_stranger(f"/api/runs/{world.run_id}", forged.get(f"/api/runs/{world.run_id}"))


# ---- /api/v1 with keys as the identity -----------------------------------------------------

# A plausible body per writing operation, aimed at the owner's objects (ids in the path, and
# the owner's dataset in the body of a new training), so another person's key really tries.
V1_BODIES: dict[str, Any] = {
    "api_v1.create_dataset": {"name": "Made by the matrix"},
    "api_v1.start_upload": {"filename": "c.png", "size": 100},
    "api_v1.complete_upload": {"parts": []},
    "api_v1.create_training": "owner's dataset",
    "api_v1.continue_training": {"extra_steps": 2},
    "api_v1.cancel_training": None,
    "api_v1.abort_upload": None,
}
V1_ACTORS = ("no key", "revoked key", "read-only key", "other's key", "owner's key")


def v1_calls(app: Flask) -> list[tuple[Rule, str]]:
    """Every /api/v1 (rule, method), destructive ones last."""
    return [(rule, method) for rule, method in calls(app) if rule.rule.startswith("/api/v1/")]


def v1_keys(app: Flask, world: World) -> dict[str, str | None]:
    """The key each actor sends: none, the owner's revoked and read-only keys, another's."""
    from app.accounts.models import User
    from app.apikeys.services import create_key, revoke_key

    other_id = seed_user(app, "other@example.com")
    with app.app_context():
        owner = db.session.get_one(User, world.user_id)
        revoked, revoked_secret = create_key(owner, "revoked", "read write")
        revoke_key(owner, revoked.id)
        _, read_only = create_key(owner, "reader", "read")
        _, others = create_key(db.session.get_one(User, other_id), "other", "read write")
    return {"no key": None, "revoked key": revoked_secret, "read-only key": read_only,
            "other's key": others, "owner's key": world.api_key}  # fmt: skip


def v1_send(app: Flask, key: str | None, rule: Rule, method: str, world: World) -> TestResponse:
    """One request as a script would send it: the key, a JSON body, no cookie."""
    client = app.test_client(use_cookies=False)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = V1_BODIES.get(rule.endpoint) if method != "GET" else None
    if body == "owner's dataset":
        body = {"dataset_id": world.dataset_id, "family": "tiny-sd", "parameters": {"steps": 4}}
    if method != "GET" and rule.endpoint not in V1_BODIES:
        raise AssertionError(f"add a body for {rule.endpoint} to V1_BODIES")
    return client.open(url_for_rule(rule, world), method=method, headers=headers, json=body)


def owner_state(app: Flask, user_id: int) -> tuple[int, int, int, int]:
    """(datasets, items, runs, open reservations) of the owner: what another key must not move."""
    from sqlalchemy import func, select

    from app.datasets.models import Dataset, DatasetItem
    from app.trainings.models import TrainingRun

    with app.app_context():
        count = lambda q: int(db.session.scalar(q) or 0)  # noqa: E731
        datasets = select(Dataset.id).where(Dataset.user_id == user_id)
        return (
            count(select(func.count()).where(Dataset.user_id == user_id)),
            count(select(func.count()).where(DatasetItem.dataset_id.in_(datasets))),
            count(select(func.count()).where(TrainingRun.user_id == user_id)),
            count(select(func.count()).where(TrainingRun.user_id == user_id,
                                             TrainingRun.reservation_open.is_(True))),
        )  # fmt: skip


def test_every_api_v1_operation_for_each_kind_of_key(any_db_app: Flask) -> None:
    from app.api_v1.auth import required_scope

    world = build_world(any_db_app)
    keys = v1_keys(any_db_app, world)
    markers = ("Owned", f"users/{world.user_id}/", world.api_key)
    before = owner_state(any_db_app, world.user_id)
    matrix: dict[str, dict[str, int]] = {}
    problems: list[str] = []
    for actor in V1_ACTORS:  # the owner last: their calls change the world
        for rule, method in v1_calls(any_db_app):
            response = v1_send(any_db_app, keys[actor], rule, method, world)
            label = f"{method} {rule.rule}"
            matrix.setdefault(label, {})[actor] = response.status_code
            with any_db_app.test_request_context(url_for_rule(rule, world), method=method):
                writes = required_scope() == "write"
            problem = _judge_v1(actor, rule, writes, response, markers)
            if problem:
                problems.append(f"{actor:13} {label} -> {response.status_code}: {problem}")
        if actor != "owner's key":
            assert owner_state(any_db_app, world.user_id) == before, f"{actor} changed data"
    _maybe_write(matrix, ".api-v1")
    statuses = [status for row in matrix.values() for status in row.values()]
    print(f"/api/v1 matrix: {len(matrix)} operations x {len(V1_ACTORS)} keys, "
          f"{len(problems)} problems, {sum(s >= 500 for s in statuses)} 5xx")  # fmt: skip
    assert not problems, "\n".join(problems)
    assert len(matrix) == 18


def _judge_v1(
    actor: str, rule: Rule, writes: bool, response: TestResponse, markers: tuple[str, ...]
) -> str | None:
    status, text = response.status_code, response.get_data(as_text=True)
    body = response.get_json(silent=True) or {}
    if status >= 500:
        return "server error"
    if status >= 400 and response.mimetype != "application/problem+json":
        return "an error that is not problem+json"
    owned = bool(OWNED_PARAMS & set(rule.arguments))
    if actor in ("no key", "revoked key"):
        wanted = "missing" if actor == "no key" else "unknown"  # a revoked key is deleted
        return None if status == 401 and body.get("reason") == wanted else f"not 401 {wanted}"
    if actor == "read-only key" and writes:
        return None if status == 403 else "a read-only key was not refused"
    if actor == "other's key":
        if owned and status != 404:
            return "someone else's object did not answer 404"
        if any(marker in text for marker in markers):
            return "the owner's data leaked"
        return None
    if status in (401, 403, 404):
        return "the owner (or their read key) could not reach their own object"
    return None
