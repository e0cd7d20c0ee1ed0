"""E-mail verification, password reset and change, e-mail change, sessions revoked everywhere.

E-mails go through the real SMTP test server: the web request queues a job, the job runs in
this process (as a CPU worker would) and the test reads the link from the received message.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.accounts.models import User
from app.db_types import utcnow
from app.extensions import db
from tests.app.privacy.support import inline_jobs, links, make_user, path_of, run_jobs  # noqa: F401
from tests.support.smtp import SmtpServer
from tests.support.web import GOOD_PASSWORD, csrf_token, sign_in, sign_up

pytestmark = pytest.mark.usefixtures("inline_jobs")  # queued jobs run inside the test's app
NEW_PASSWORD = "purple elephants dance quietly"


def post_form(client: FlaskClient, page: str, action: str, **fields: str):  # type: ignore[no-untyped-def]
    """Submit a form on `page` to `action` with the page's CSRF token."""
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, **fields})


def last_link(app: Flask, mailbox: SmtpServer, to: str) -> str:
    """Run the queued mail jobs; the app path of the newest link sent to `to`."""
    run_jobs(app)
    messages = [m for m in mailbox.messages if m["To"] == to]
    assert messages, f"no e-mail to {to}"
    return path_of(links(messages[-1])[0])


def test_sign_up_sends_a_verification_link_that_works_once(
    app: Flask, client: FlaskClient, mailbox: SmtpServer
) -> None:
    sign_up(client)
    link = last_link(app, mailbox, "ada@example.com")
    assert "not confirmed" in client.get("/account").get_data(as_text=True)
    assert client.get(link).headers["Location"] == "/account"
    assert "confirmed" in client.get("/account").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User.email_verified_at)) is not None
    client.get(link)
    assert "already been used" in client.get("/account").get_data(as_text=True)


def test_password_reset_answers_alike_and_its_link_works_once(
    app: Flask, mailbox: SmtpServer
) -> None:
    device = app.test_client()
    sign_up(device)
    run_jobs(app)
    mailbox.clear()
    stranger = app.test_client()
    known = post_form(stranger, "/forgot-password", "/forgot-password", email="ada@example.com")
    unknown = post_form(
        stranger, "/forgot-password", "/forgot-password", email="nobody@example.com"
    )
    assert known.status_code == unknown.status_code == 200
    # The pages may differ only in the CSRF tokens (they carry a timestamp) and the typed e-mail.
    token = re.compile(r'(csrf[-_]token"[^>]*?(?:content|value)=)"[^"]*"')
    strip = lambda r, typed: token.sub(r'\1""', r.get_data(as_text=True)).replace(typed, "")  # noqa: E731
    assert strip(known, "ada@example.com") == strip(unknown, "nobody@example.com")
    # Both took the same path: one job each, the lookup happens in the worker.
    assert run_jobs(app) == 2
    assert [m["To"] for m in mailbox.messages] == ["ada@example.com"]
    link = path_of(links(mailbox.messages[0])[0])
    weak = post_form(stranger, link, link, password="short")
    assert weak.status_code == 422 and "at least 10" in weak.get_data(as_text=True)
    assert (
        post_form(stranger, link, link, password=NEW_PASSWORD).headers["Location"] == "/dashboard"
    )
    assert stranger.get("/dashboard").status_code == 200
    assert device.get("/dashboard").status_code == 302  # the other session was revoked
    assert sign_in(app.test_client(), "ada@example.com", NEW_PASSWORD).status_code == 302
    again = stranger.get(link)
    assert again.status_code == 422 and "already been used" in again.get_data(as_text=True)


def test_password_reset_link_expires_after_an_hour(app: Flask, mailbox: SmtpServer) -> None:
    with app.app_context():
        make_user("ada@example.com")
    client = app.test_client()
    post_form(client, "/forgot-password", "/forgot-password", email="ada@example.com")
    link = last_link(app, mailbox, "ada@example.com")
    with time_machine.travel(utcnow() + timedelta(hours=1, seconds=5), tick=False):
        page = client.get(link)
    assert page.status_code == 422 and "expired" in page.get_data(as_text=True)


def test_password_change_revokes_other_sessions(app: Flask, mailbox: SmtpServer) -> None:
    laptop = app.test_client()
    sign_up(laptop)
    phone = app.test_client()
    sign_in(phone, "ada@example.com")
    wrong = post_form(
        laptop,
        "/account",
        "/account/password",
        current_password="nope nope nope",
        password=NEW_PASSWORD,
    )
    assert wrong.status_code == 422 and "not your current password" in wrong.get_data(as_text=True)
    done = post_form(
        laptop,
        "/account",
        "/account/password",
        current_password=GOOD_PASSWORD,
        password=NEW_PASSWORD,
    )
    assert done.headers["Location"] == "/account"
    assert laptop.get("/dashboard").status_code == 200  # this session stays
    assert phone.get("/dashboard").status_code == 302  # the other one is gone
    run_jobs(app)
    assert "Your Attune password was changed" in [m["Subject"] for m in mailbox.messages]


def test_sign_out_ends_this_device_and_sign_out_everywhere_every_one(app: Flask) -> None:
    laptop = app.test_client()
    sign_up(laptop)
    phone, tablet = app.test_client(), app.test_client()
    sign_in(phone, "ada@example.com")
    sign_in(tablet, "ada@example.com")
    stolen = laptop.get_cookie("session").value
    assert post_form(laptop, "/dashboard", "/sign-out").status_code == 302
    assert "signed out on this device" in laptop.get("/sign-in").get_data(as_text=True)
    assert laptop.get("/dashboard").status_code == 302
    assert phone.get("/dashboard").status_code == 200  # the other devices stay signed in
    replay = app.test_client()
    replay.set_cookie("session", stolen)  # a copy of the signed-out cookie is refused too
    assert replay.get("/dashboard").status_code == 302

    assert post_form(phone, "/dashboard", "/sign-out/everywhere").status_code == 302
    assert "signed out on every device" in phone.get("/sign-in").get_data(as_text=True)
    assert phone.get("/dashboard").status_code == 302
    assert tablet.get("/dashboard").status_code == 302


def test_email_change_needs_the_new_address_confirmed(
    app: Flask, client: FlaskClient, mailbox: SmtpServer
) -> None:
    sign_up(client)
    with app.app_context():
        make_user("taken@example.com", name="Other")
    run_jobs(app)
    mailbox.clear()
    taken = post_form(
        client, "/account", "/account/email", email="taken@example.com", password=GOOD_PASSWORD
    )
    assert taken.status_code == 422 and "Another account" in taken.get_data(as_text=True)
    wrong = post_form(
        client, "/account", "/account/email", email="ada@new.example", password="wrong one!!"
    )
    assert wrong.status_code == 422
    post_form(client, "/account", "/account/email", email="Ada@New.example", password=GOOD_PASSWORD)
    with app.app_context():
        assert (
            db.session.scalar(select(User.email).where(User.name == "Ada Lovelace"))
            == "ada@example.com"
        )
    link = last_link(app, mailbox, "ada@new.example")
    assert any(m["To"] == "ada@example.com" for m in mailbox.messages)  # the old address is told
    client.get(link)
    assert "now ada@new.example" in client.get("/account").get_data(as_text=True)
    assert sign_in(app.test_client(), "ada@new.example").status_code == 302
    client.get(link)
    assert "already been used" in client.get("/account").get_data(as_text=True)


def test_only_the_session_cookie_is_set(client: FlaskClient) -> None:
    responses = [sign_up(client), client.get("/dashboard"), client.get("/my-data")]
    responses.append(client.get("/privacy"))
    names = {
        header.split("=", 1)[0] for r in responses for header in r.headers.getlist("Set-Cookie")
    }
    assert names == {"session"}
    assert "only essential cookies" in responses[-1].get_data(as_text=True)
