"""The dashboard, the header's plan badge and the friendly error pages."""

from __future__ import annotations

from flask import Flask, abort
from flask.testing import FlaskClient

from tests.support.accounts import activate_plan
from tests.support.web import sign_up


def test_a_new_account_sees_no_plan_and_what_to_do_next(signed_in: FlaskClient) -> None:
    page = signed_in.get("/dashboard").get_data(as_text=True)
    assert "Hello, Ada Lovelace" in page
    assert 'id="plan-badge"' in page and "No plan" in page
    assert 'aria-current="step">' in page.split("Choose a plan")[0]  # step 1 is the current one
    assert "No datasets yet" in page and "Create a dataset" in page
    assert "No runs yet. Once a dataset has ready images" in page


def test_a_subscriber_sees_the_plan_and_this_periods_gpu_time(
    app: Flask, client: FlaskClient
) -> None:
    sign_up(client)
    activate_plan(app, "ada@example.com", "pro", days_left=10)
    page = client.get("/dashboard").get_data(as_text=True)
    assert '<a class="plan-badge" id="plan-badge"' in page and ">Pro</a>" in page
    assert "20.0 h <small>left of 20.0 h</small>" in page
    assert 'id="plan-renews">Renews on' in page
    assert "You are on Pro." in page  # the checklist ticks the first step


def test_error_pages_are_friendly_and_keep_the_site_around_them(
    app: Flask, client: FlaskClient
) -> None:
    @app.route("/test-forbidden")
    def forbidden() -> str:
        abort(403)

    @app.route("/test-crash")
    def crash() -> str:
        raise RuntimeError("boom")

    for path, status, heading in [
        ("/no-such-page", 404, "Page not found"),
        ("/test-forbidden", 403, "This page is not yours to see"),
        ("/test-crash", 500, "Something went wrong on our side"),
    ]:
        response = client.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == status, path
        assert f"<h1>{heading}</h1>" in page and 'class="site-header"' in page
        assert "boom" not in page and "Traceback" not in page
        assert "Back to Attune" in page
