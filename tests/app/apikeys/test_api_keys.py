"""API keys: created on the page and shown once, only a hash stored, last use noted at most
once a minute, revoked at once, refused with a reason, scoped, limited per key, and gone with
the account (dead on the delete request, erased with it, listed without secrets in exports)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.accounts.models import User
from app.apikeys.models import ApiKey
from app.db_types import utcnow
from app.extensions import db
from app.queues import PRIVACY_QUEUE
from tests.app.api_v1.support import Api, assert_problem, create_key_in_browser
from tests.app.privacy.support import jobs_use_app, run_jobs
from tests.support.accounts import activate_plan
from tests.support.apps import running_app
from tests.support.web import GOOD_PASSWORD, csrf_token, sign_up


def _rows(app: Flask) -> list[ApiKey]:
    with app.app_context():
        return list(db.session.scalars(select(ApiKey).order_by(ApiKey.id)))


def test_a_new_key_is_shown_once_and_only_its_hash_is_kept(
    app: Flask, signed_in: FlaskClient
) -> None:
    key = create_key_in_browser(signed_in, "laptop CLI")
    assert key.startswith("att_live_") and len(key) == 9 + 43
    again = signed_in.get("/account/api-keys")
    assert key not in again.text  # never shown again
    assert "laptop CLI" in again.text and f"{key[:15]}…" in again.text
    assert "Read and write" in again.text and "never" in again.text
    (row,) = _rows(app)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    with app.app_context():
        stored = db.session.execute(select(ApiKey.__table__)).mappings().one()
    assert all(key not in str(value) for value in stored.values())
    assert Api(app, key).get("/usage").status_code == 200
    second = create_key_in_browser(signed_in, "CI")
    assert second != key and len(_rows(app)) == 2


def test_creating_a_key_needs_a_name_and_a_known_access(signed_in: FlaskClient) -> None:
    token = csrf_token(signed_in.get("/account/api-keys").text)
    empty = signed_in.post("/account/api-keys", data={"csrf_token": token, "name": " ",
                                                      "access": "read"})  # fmt: skip
    assert empty.status_code == 422 and "new-key-value" not in empty.text
    odd = signed_in.post("/account/api-keys", data={"csrf_token": token, "name": "x",
                                                    "access": "admin"})  # fmt: skip
    assert odd.status_code == 422 and "Not a valid choice" in odd.text


def test_last_use_is_noted_at_most_once_a_minute(app: Flask, signed_in: FlaskClient) -> None:
    api = Api(app, create_key_in_browser(signed_in))
    with time_machine.travel(utcnow(), tick=False) as clock:
        assert api.get("/usage").status_code == 200
        first = _rows(app)[0].last_used_at
        assert first is not None
        clock.shift(timedelta(seconds=50))
        assert api.get("/models").status_code == 200
        assert _rows(app)[0].last_used_at == first
        clock.shift(timedelta(seconds=15))
        assert api.get("/usage").status_code == 200
        assert _rows(app)[0].last_used_at == first + timedelta(seconds=65)
    assert "never" not in signed_in.get("/account/api-keys").text.split("Create a key")[0]


def test_a_revoked_key_is_deleted_and_gets_401_with_a_reason_never_a_redirect(
    app: Flask, signed_in: FlaskClient
) -> None:
    api = Api(app, create_key_in_browser(signed_in, "old script"))
    assert api.get("/trainings").status_code == 200
    key_id = _rows(app)[0].id
    token = csrf_token(signed_in.get("/account/api-keys").text)
    revoked = signed_in.post(f"/account/api-keys/{key_id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 302
    page = signed_in.get("/account/api-keys").text
    assert "old script" not in page.split("Keys that work")[1].split("Create a key")[0]
    assert _rows(app) == []  # seed 003: kept until revoked, so revoking deletes the key
    for response in (api.get("/trainings"), api.post("/datasets", {"name": "x"})):
        body = assert_problem(response, 401)
        assert body["reason"] == "unknown" and "revoked" in body["detail"]
        assert "Location" not in response.headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    again = signed_in.post(f"/account/api-keys/{key_id}/revoke", data={"csrf_token": token})
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Basic YWRhOnNlY3JldA==", "malformed"),
        ("Bearer", "malformed"),
        ("Bearer att_live_short", "malformed"),
        ("Bearer sk_live_" + "a" * 43, "malformed"),
        ("Bearer att_live_" + "a" * 43, "unknown"),
        ("bearer att_live_" + "B" * 43, "unknown"),
    ],
)
def test_missing_malformed_and_unknown_keys_get_401_with_a_reason(
    app: Flask, header: str | None, reason: str
) -> None:
    client = Api(app, None)
    headers = {} if header is None else {"Authorization": header}
    body = assert_problem(client.get("/datasets", headers=headers), 401)
    assert body["reason"] == reason
    assert_problem(client.post("/trainings", {}, headers=headers), 401)


def test_a_session_is_not_an_api_credential(signed_in: FlaskClient) -> None:
    """The browser's cookie works for the browser's pages only; /api/v1 wants a key."""
    assert signed_in.get("/dashboard").status_code == 200
    body = assert_problem(signed_in.get("/api/v1/usage"), 401)
    assert body["reason"] == "missing"


def test_a_read_only_key_reads_and_gets_403_for_writes(app: Flask, signed_in: FlaskClient) -> None:
    activate_plan(app, "ada@example.com", "pro")
    writer = Api(app, create_key_in_browser(signed_in, "writer"))
    reader = Api(app, create_key_in_browser(signed_in, "reader", access="read"))
    dataset = writer.post("/datasets", {"name": "Cats"}).get_json()
    assert reader.get(f"/datasets/{dataset['id']}").get_json()["name"] == "Cats"
    assert_problem(reader.post("/datasets", {"name": "Dogs"}), 403)
    started = writer.post(f"/datasets/{dataset['id']}/uploads",
                          {"filename": "big.jpg", "size": 40 * 1024 * 1024}).get_json()  # fmt: skip
    item = started["item"]["id"]
    # Signing parts is part of writing, although it is a GET.
    response = reader.get(f"/datasets/{dataset['id']}/uploads/{item}/parts/1")
    assert_problem(response, 403)
    assert "insufficient_scope" in response.headers["WWW-Authenticate"]
    assert_problem(reader.delete(f"/datasets/{dataset['id']}/uploads/{item}"), 403)
    assert writer.get(f"/datasets/{dataset['id']}/uploads/{item}/parts/1").status_code == 200


def test_nobody_else_can_revoke_my_key(
    app: Flask, signed_in: FlaskClient, other_client: Callable[[str], FlaskClient]
) -> None:
    api = Api(app, create_key_in_browser(signed_in, "ada-only"))
    key_id = _rows(app)[0].id
    eve = other_client("eve@example.com")
    token = csrf_token(eve.get("/account/api-keys").text)
    assert (
        eve.post(f"/account/api-keys/{key_id}/revoke", data={"csrf_token": token}).status_code
        == 404
    )
    assert "ada-only" not in eve.get("/account/api-keys").text
    assert api.get("/usage").status_code == 200


@pytest.fixture
def limited_app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app with 5 API requests per minute per key."""
    with running_app(request, "sqlite", {"api_requests_per_minute": 5}) as application:
        yield application


def test_the_rate_limit_counts_per_key(limited_app: Flask) -> None:
    ada, eve = limited_app.test_client(), limited_app.test_client()
    sign_up(ada)
    sign_up(eve, email="eve@example.com")
    first = Api(limited_app, create_key_in_browser(ada, "one"))
    second = Api(limited_app, create_key_in_browser(ada, "two"))
    eves = Api(limited_app, create_key_in_browser(eve))
    paths = ["/usage", "/models", "/datasets", "/trainings", "/usage"]
    assert [first.get(path).status_code for path in paths] == [200] * 5  # shared by every path
    limited = first.get("/models")
    assert_problem(limited, 429)
    assert int(limited.headers["Retry-After"]) > 0
    assert second.get("/usage").status_code == 200 and eves.get("/usage").status_code == 200
    # Requests without a valid key count per address, so guessing keys is limited too.
    guesses = [Api(limited_app, "att_live_" + f"{n:043d}").get("/usage") for n in range(6)]
    assert [g.status_code for g in guesses] == [401] * 5 + [429]


def test_keys_die_on_the_delete_request_and_are_erased_with_the_account(
    app: Flask, signed_in: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = Api(app, create_key_in_browser(signed_in))
    assert api.get("/usage").status_code == 200
    dataset = api.post("/datasets", {"name": "Cats"}).get_json()["id"]
    assert (
        api.post(f"/datasets/{dataset}/uploads", {"filename": "a.png", "size": 5}).status_code
        == 201
    )
    with app.app_context():
        user_id = db.session.scalar(select(User.id))
    assert _limit_counters(app, user_id)  # the key's and the uploads' allowances are counted
    token = csrf_token(signed_in.get("/account/delete").text)
    deleted = signed_in.post("/account/delete", data={"csrf_token": token,
                                                      "password": GOOD_PASSWORD})  # fmt: skip
    assert deleted.status_code == 302
    # At once, before any job ran, as the sessions are.
    assert assert_problem(api.get("/usage"), 401)["reason"] == "account_closing"
    jobs_use_app(monkeypatch, app)
    run_jobs(app, PRIVACY_QUEUE)  # the erasure
    assert _rows(app) == []
    assert _limit_counters(app, user_id) == []  # the erasure forgot the counters too
    assert assert_problem(api.get("/usage"), 401)["reason"] == "unknown"


def _limit_counters(app: Flask, user_id: int) -> list[bytes]:
    """The rate limiter's keys that name the account (as tests/support/leftovers.py looks)."""
    from redis import Redis

    from app.extensions import get_settings

    with app.app_context():
        redis = Redis.from_url(get_settings().redis_url)
    names = re.compile(rf"account:{user_id}[:/]".encode())
    return [key for key in redis.scan_iter(match="*LIMITER*") if names.search(key)]


def test_the_export_lists_keys_without_their_secrets(app: Flask, signed_in: FlaskClient) -> None:
    from app.privacy.exports import account_data

    key = create_key_in_browser(signed_in, "nightly")
    with app.app_context():
        user = db.session.scalar(select(User))
        data = account_data(user)
    (listed,) = data["api_keys"]
    assert listed["name"] == "nightly" and listed["prefix"] == key[:15]
    assert listed["scopes"] == "read write" and "key_hash" not in listed
    text = json.dumps(data, default=str)
    assert key not in text and hashlib.sha256(key.encode()).hexdigest() not in text
