"""Sign-up, sign-in and sign-out, including every kind of bad input."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support.web import GOOD_PASSWORD, csrf_token, sign_in, sign_up


def test_sign_up_signs_in_and_stores_an_argon2id_hash(app: Flask, client: FlaskClient) -> None:
    response = sign_up(client, email="Ada@Example.com", company="Analytical Engines")
    assert response.status_code == 302
    assert "Hello, Ada Lovelace" in client.get("/dashboard").get_data(as_text=True)
    from app.accounts.models import User
    from app.extensions import db

    with app.app_context():
        user = db.session.scalar(select(User))
        assert user is not None
        assert user.email == "ada@example.com"
        assert user.company == "Analytical Engines"
        assert user.password_hash.startswith("$argon2id$")
        assert GOOD_PASSWORD not in user.password_hash
        assert user.adult_confirmed_at is not None


def test_sign_up_says_where_the_confirmation_went_and_what_to_do_first(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up(client, email="ada@example.com")
    page = client.get("/dashboard").get_data(as_text=True)
    assert "We sent a confirmation e-mail to ada@example.com" in page
    assert "no mail server" not in page  # this app has SMTP
    # The welcome and the checklist name the same first step.
    assert "Your first step is under “Getting started”: choose a plan." in page
    current = page.split('aria-current="step"', 1)[1].split("</li>", 1)[0]
    assert "<strong>Choose a plan</strong>" in current

    # Embedded mode (no SMTP host): the message says which folder the e-mail is written to.
    settings = app.extensions["attune.settings"]
    monkeypatch.setitem(app.extensions, "attune.settings", replace(settings, smtp_host=""))
    embedded = app.test_client()
    sign_up(embedded, email="grace@example.com")
    page = embedded.get("/dashboard").get_data(as_text=True)
    outbox = settings.instance_path / "outbox"
    assert f"no mail server configured, so it was written to {outbox}" in page


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"email": "not-an-email"}, "Invalid email address"),
        ({"password": "short"}, "at least 10 characters"),
        ({"password": "password123"}, "too easy to guess"),
        ({"password": "x" * 10_000}, "256"),
        ({"adult": False}, "18 or older"),
        ({"name": ""}, "This field is required"),
    ],
)
def test_bad_sign_up_input_gets_a_form_error(
    client: FlaskClient, changes: dict[str, object], message: str
) -> None:
    response = sign_up(client, **changes)  # type: ignore[arg-type]
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302  # not signed in


def test_existing_email_gets_a_form_error(app: Flask) -> None:
    assert sign_up(app.test_client()).status_code == 302
    response = sign_up(app.test_client(), email="ADA@example.com")
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)


def test_sign_in_and_out(app: Flask) -> None:
    sign_up(app.test_client())
    client = app.test_client()
    assert sign_in(client, "ada@example.com", "wrong password!!").status_code == 422
    assert sign_in(client, "ada@example.com").status_code == 302
    assert client.get("/dashboard").status_code == 200
    token = csrf_token(client.get("/dashboard").get_data(as_text=True))
    assert client.post("/sign-out", data={"csrf_token": token}).status_code == 302
    assert client.get("/dashboard").status_code == 302


def test_unknown_email_and_wrong_password_answer_alike(app: Flask) -> None:
    sign_up(app.test_client())
    unknown = sign_in(app.test_client(), "nobody@example.com", "whatever-password")
    wrong = sign_in(app.test_client(), "ada@example.com", "whatever-password")
    assert unknown.status_code == wrong.status_code == 422
    assert "do not match an account" in unknown.get_data(as_text=True)
    assert "do not match an account" in wrong.get_data(as_text=True)


def test_eleventh_failed_sign_in_within_a_minute_gets_429(app: Flask) -> None:
    sign_up(app.test_client())
    client = app.test_client()
    for _ in range(10):
        assert sign_in(client, "ada@example.com", "wrong password!!").status_code == 422
    response = sign_in(client, "ada@example.com", "wrong password!!")
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)
    # Another account is not locked out by someone hammering this one.
    sign_up(app.test_client(), email="grace@example.com")
    assert sign_in(app.test_client(), "grace@example.com").status_code == 302


def test_forms_without_csrf_token_are_refused(client: FlaskClient) -> None:
    response = client.post(
        "/sign-up",
        data={"name": "A", "email": "a@example.com", "password": GOOD_PASSWORD, "adult": "y"},
    )
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)


def test_session_cookie_is_httponly_and_samesite(client: FlaskClient) -> None:
    response = sign_up(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_revoked_session_is_signed_out(app: Flask, signed_in: FlaskClient) -> None:
    from app.accounts.models import User
    from app.accounts.services import revoke_sessions
    from app.extensions import db

    with app.app_context():
        revoke_sessions(db.session.scalar(select(User)))
    assert signed_in.get("/dashboard").status_code == 302


def test_open_redirect_after_sign_in_is_refused(app: Flask) -> None:
    sign_up(app.test_client())
    client = app.test_client()
    token = csrf_token(client.get("/sign-in").get_data(as_text=True))
    response = client.post(
        "/sign-in?next=//evil.example/x",
        data={"csrf_token": token, "email": "ada@example.com", "password": GOOD_PASSWORD},
    )
    assert response.headers["Location"] == "/dashboard"
