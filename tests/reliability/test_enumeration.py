"""Sign-in and password reset answer alike, and about as fast, for known and unknown e-mails."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.accounts import seed_user
from tests.support.apps import running_app
from tests.support.web import csrf_token

TRIES = 10
# Generous: the machine is shared, and only a systematic gap (a skipped hash, a DB lookup
# that only one side does) would leak which accounts exist.
LOW, HIGH = 0.5, 2.0


@pytest.fixture
def lenient_app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app with a per-account sign-in limit high enough for the timing loop."""
    with running_app(request, "sqlite", {"login_attempts_per_minute": 1000}) as application:
        yield application


def _visible(html: str) -> str:
    """The page as people see it, without the per-session CSRF token and the typed e-mail."""
    html = re.sub(r'(name="csrf_token" type="hidden" value=|name="csrf-token" content=)"[^"]+"',
                  r"\1", html)  # fmt: skip
    return re.sub(r"[\w.+-]+@example\.com", "EMAIL", html)


def _timed(
    client: FlaskClient, path: str, form: dict[str, str], address: str
) -> tuple[float, int, str]:
    start = time.perf_counter()
    response = client.post(path, data=form, environ_base={"REMOTE_ADDR": address})
    return time.perf_counter() - start, response.status_code, _visible(response.text)


def _compare(known: list[float], unknown: list[float], what: str) -> float:
    ratio = statistics.median(known) / statistics.median(unknown)
    print(  # shown with pytest -s; the figures in RELIABILITY.md come from here
        f"{what}: median known {statistics.median(known) * 1000:.1f} ms, "
        f"unknown {statistics.median(unknown) * 1000:.1f} ms, ratio {ratio:.2f}"
    )
    assert LOW <= ratio <= HIGH, (
        f"{what}: median known {statistics.median(known) * 1000:.1f} ms, "
        f"unknown {statistics.median(unknown) * 1000:.1f} ms (ratio {ratio:.2f})"
    )
    return ratio


def test_sign_in_answers_alike_for_known_and_unknown_emails(lenient_app: Flask) -> None:
    seed_user(lenient_app, "known@example.com")
    client = lenient_app.test_client()
    token = csrf_token(client.get("/sign-in").text)
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    pages: dict[str, set[tuple[int, str]]] = {"known": set(), "unknown": set()}
    # One warm-up each, then interleaved tries so machine noise hits both sides alike.
    for attempt in range(TRIES + 1):
        for kind, email in (("known", "known@example.com"), ("unknown", "nobody@example.com")):
            form = {"csrf_token": token, "email": email, "password": "wrong password 123"}
            seconds, status, page = _timed(client, "/sign-in", form, f"10.1.{attempt}.1")
            pages[kind].add((status, page))
            if attempt:
                timings[kind].append(seconds)
    assert pages["known"] == pages["unknown"] and len(pages["known"]) == 1
    assert next(iter(pages["known"]))[0] == 422
    _compare(timings["known"], timings["unknown"], "sign-in")


def test_password_reset_answers_alike_for_known_and_unknown_emails(lenient_app: Flask) -> None:
    for n in range(TRIES + 1):
        seed_user(lenient_app, f"known{n}@example.com")
    client = lenient_app.test_client()
    token = csrf_token(client.get("/forgot-password").text)
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    pages: dict[str, set[tuple[int, str]]] = {"known": set(), "unknown": set()}
    for attempt in range(TRIES + 1):  # a new address each time: 5 requests per hour per e-mail
        for kind in ("known", "unknown"):
            form = {"csrf_token": token, "email": f"{kind}{attempt}@example.com"}
            seconds, status, page = _timed(client, "/forgot-password", form, f"10.2.{attempt}.1")
            pages[kind].add((status, page))
            if attempt:
                timings[kind].append(seconds)
    assert pages["known"] == pages["unknown"] and len(pages["known"]) == 1
    assert next(iter(pages["known"]))[0] == 200
    _compare(timings["known"], timings["unknown"], "password reset")
