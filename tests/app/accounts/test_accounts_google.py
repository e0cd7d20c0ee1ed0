"""Google sign-in end to end through a real OpenID Connect provider on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.accounts.models import Identity, User
from app.extensions import db
from tests.support.apps import DATABASES, running_app
from tests.support.oidc import OidcProvider
from tests.support.web import csrf_token, sign_up


@pytest.fixture(scope="module")
def oidc() -> Iterator[OidcProvider]:
    """One provider for the module; tests register their own `sub`s."""
    provider = OidcProvider()
    yield provider
    provider.stop()


@pytest.fixture(params=DATABASES)
def app(request: pytest.FixtureRequest, oidc: OidcProvider) -> Iterator[Flask]:
    """The app with Google sign-in pointed at the local provider."""
    google = {
        "google_client_id": "attune-test-client",
        "google_client_secret": "attune-test-secret",
        "google_discovery_url": oidc.discovery_url,
    }
    with running_app(request, request.param, google) as application:
        yield application


def start_google(client: FlaskClient, intent: str = "sign-in", page: str = "/sign-in") -> str:
    """Press a Google button; returns the provider URL the browser is sent to."""
    token = csrf_token(client.get(page).get_data(as_text=True))
    response = client.post("/sign-in/google", data={"csrf_token": token, "intent": intent})
    assert response.status_code == 302
    return response.headers["Location"]


def google_round_trip(
    client: FlaskClient,
    oidc: OidcProvider,
    sub: str,
    intent: str = "sign-in",
    page: str = "/sign-in",
):  # type: ignore[no-untyped-def]
    """Sign in at the provider as `sub` and follow the redirect back to the app."""
    return client.get(oidc.authorize(start_google(client, intent, page), sub))


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_new_google_user_confirms_18_plus_before_the_account_exists(
    app: Flask, client: FlaskClient, oidc: OidcProvider
) -> None:
    oidc.set_user("g-new-1", "grace@example.com", name="Grace Hopper")
    response = google_round_trip(client, oidc, "g-new-1")
    assert response.headers["Location"] == "/sign-up/google"
    with app.app_context():
        assert count(User) == 0  # nothing is created before the 18+ confirmation
    page = client.get("/sign-up/google").get_data(as_text=True)
    assert "grace@example.com" in page and 'value="Grace Hopper"' in page
    refused = client.post("/sign-up/google", data={"csrf_token": csrf_token(page), "name": "Grace"})
    assert refused.status_code == 422 and "18 or older" in refused.get_data(as_text=True)
    with app.app_context():
        assert count(User) == 0
    created = client.post(
        "/sign-up/google", data={"csrf_token": csrf_token(page), "name": "Grace", "adult": "y"}
    )
    assert created.status_code == 302
    assert "Hello, Grace" in client.get("/dashboard").get_data(as_text=True)
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.password_hash is None and user.email_verified_at is not None
        assert user.policy_version == "1.0"
        identity = db.session.scalar(select(Identity))
        assert (identity.provider, identity.subject, identity.user_id) == (
            "google",
            "g-new-1",
            user.id,
        )
    # Next time the same Google person goes straight in, keyed by sub even with a new e-mail.
    oidc.set_user("g-new-1", "grace.hopper@example.com")
    other = app.test_client()
    assert google_round_trip(other, oidc, "g-new-1").headers["Location"] == "/dashboard"
    assert "Hello, Grace" in other.get("/dashboard").get_data(as_text=True)


def test_google_sign_in_never_takes_over_a_password_account(app: Flask, oidc: OidcProvider) -> None:
    owner = app.test_client()
    assert sign_up(owner, email="ada@example.com").status_code == 302
    oidc.set_user("g-attacker", "ada@example.com")  # same e-mail, someone else's Google
    attacker = app.test_client()
    response = google_round_trip(attacker, oidc, "g-attacker")
    assert response.headers["Location"] == "/sign-in"
    assert "link Google from your account page" in attacker.get("/sign-in").get_data(as_text=True)
    assert attacker.get("/dashboard").status_code == 302  # not signed in
    assert attacker.get("/sign-up/google").status_code == 302  # and no sign-up offered
    with app.app_context():
        assert count(Identity) == 0 and count(User) == 1


def test_linking_happens_from_inside_the_account(app: Flask, oidc: OidcProvider) -> None:
    owner = app.test_client()
    sign_up(owner, email="ada@example.com")
    oidc.set_user("g-ada", "ada.personal@example.com")
    response = google_round_trip(owner, oidc, "g-ada", intent="link", page="/account")
    assert response.headers["Location"] == "/account"
    assert "Linked to ada.personal@example.com" in owner.get("/account").get_data(as_text=True)
    # Now Google signs this person in, from a fresh browser.
    browser = app.test_client()
    assert google_round_trip(browser, oidc, "g-ada").headers["Location"] == "/dashboard"
    assert "Hello, Ada" in browser.get("/dashboard").get_data(as_text=True)
    # The same Google account cannot be linked to a second Attune account.
    other = app.test_client()
    sign_up(other, email="grace@example.com", name="Grace")
    google_round_trip(other, oidc, "g-ada", intent="link", page="/account")
    assert "linked to another Attune account" in other.get("/account").get_data(as_text=True)


def test_state_and_nonce_are_checked(app: Flask, client: FlaskClient, oidc: OidcProvider) -> None:
    oidc.set_user("g-state", "state@example.com")
    callback = oidc.authorize(start_google(client), "g-state")
    forged = callback.replace("state=", "state=forged")
    assert client.get(forged).headers["Location"] == "/sign-in"
    assert "did not complete" in client.get("/sign-in").get_data(as_text=True)
    # A callback carried into another browser (no state in its session) is refused too.
    stranger = app.test_client()
    assert stranger.get(callback).headers["Location"] == "/sign-in"
    # A wrong nonce: the ID token was issued for a different sign-in attempt.
    callback = oidc.authorize(start_google(client), "g-state")
    with client.session_transaction() as session:
        for key in [k for k in session if k.startswith("_state_google_")]:
            state = session[key]
            state["data"]["nonce"] = "not-the-nonce-google-signed"
            session[key] = state
    assert client.get(callback).headers["Location"] == "/sign-in"
    with app.app_context():
        assert count(User) == 0 and count(Identity) == 0


def test_an_unverified_google_email_is_refused(
    app: Flask, client: FlaskClient, oidc: OidcProvider
) -> None:
    oidc.set_user("g-unverified", "nobody@example.com", verified=False)
    assert google_round_trip(client, oidc, "g-unverified").headers["Location"] == "/sign-in"
    assert "not verified" in client.get("/sign-in").get_data(as_text=True)
    assert client.get("/sign-up/google").status_code == 302


def test_google_button_only_when_configured(request: pytest.FixtureRequest) -> None:
    with running_app(request, "sqlite") as plain:
        client = plain.test_client()
        assert "Sign in with Google" not in client.get("/sign-in").get_data(as_text=True)
        token = csrf_token(client.get("/sign-in").get_data(as_text=True))
        assert client.post("/sign-in/google", data={"csrf_token": token}).status_code == 404


def test_a_google_only_account_is_deleted_after_a_fresh_google_sign_in(
    app: Flask, client: FlaskClient, oidc: OidcProvider
) -> None:
    oidc.set_user("g-leaving", "leaving@example.com")
    oidc.set_user("g-someone-else", "else@example.com")
    google_round_trip(client, oidc, "g-leaving")
    page = client.get("/sign-up/google").get_data(as_text=True)
    client.post("/sign-up/google", data={"csrf_token": csrf_token(page), "name": "L", "adult": "y"})
    page = client.get("/account/delete").get_data(as_text=True)
    assert "Confirm with Google" in page
    refused = client.post("/account/delete", data={"csrf_token": csrf_token(page)})
    assert refused.status_code == 422
    # Another Google account cannot confirm the deletion.
    wrong = google_round_trip(client, oidc, "g-someone-else", "reauth", "/account/delete")
    assert wrong.headers["Location"] == "/account"
    back = google_round_trip(client, oidc, "g-leaving", "reauth", "/account/delete")
    assert back.headers["Location"] == "/account/delete"
    page = client.get("/account/delete").get_data(as_text=True)
    assert "You signed in with Google again just now" in page
    assert client.post("/account/delete", data={"csrf_token": csrf_token(page)}).status_code == 302
    assert client.get("/dashboard").status_code == 302
    with app.app_context():
        assert db.session.scalar(select(User.deletion_requested_at)) is not None
