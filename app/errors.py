"""Error responses: a page for people, JSON for API calls, RFC 9457 problem+json for /api/v1,
never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable
from werkzeug.http import HTTP_STATUS_CODES

from app.extensions import db, get_settings, login_manager
from storage import ObjectNotFound, StorageError

log = logging.getLogger(__name__)

MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have access to this page.",
    404: "There is nothing here. It may have been deleted, or it belongs to someone else.",
    405: "That action is not allowed here.",
    413: "That upload is too large.",
    429: "Too many attempts. Wait a minute and try again.",
    500: "Something went wrong on our side. It has been logged; please try again.",
    503: "The service is briefly unavailable. Please try again in a minute.",
}

# /api/v1 problem types: the slug names the section of /docs/api that explains it.
PROBLEM_TYPES = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
    405: "method-not-allowed", 409: "conflict", 413: "too-large", 422: "invalid",
    429: "rate-limited", 500: "server-error", 503: "unavailable",
}  # fmt: skip
API_V1_PREFIX = "/api/v1"


class NotFound(Exception):
    """A service found no such object for this person (also when it is someone else's)."""


def wants_json() -> bool:
    """True for API and upload calls, which get JSON errors instead of pages."""
    if request.path.startswith(("/api/", "/storage/")) or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def is_api_v1() -> bool:
    """True for the public API, whose errors are problem+json."""
    return request.path == API_V1_PREFIX or request.path.startswith(API_V1_PREFIX + "/")


def problem_response(
    status: int,
    detail: str | None = None,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> tuple[Response, int]:
    """An RFC 9457 problem: type, title, status, detail, per-field `errors`, extension members."""
    slug = PROBLEM_TYPES.get(status, "error")
    body: dict[str, Any] = {
        "type": f"{get_settings().base_url.rstrip('/')}/docs/api#problem-{slug}",
        "title": HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail or MESSAGES.get(status, "The request failed."),
        **extensions,
    }
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.mimetype = "application/problem+json"
    response.headers.update(headers or {})
    return response, status


def error_response(status: int, message: str | None = None) -> tuple[Response | str, int]:
    """The error as problem+json, JSON or the friendly page, with the given status."""
    if is_api_v1():
        return problem_response(status, message)
    text = message or MESSAGES.get(status, "The request failed.")
    if wants_json():
        return jsonify(error=text, status=status), status
    return render_template("error.html", status=status, message=text), status


def register(app: Flask) -> None:
    """Install the handlers on `app`."""

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> tuple[Response | str, int]:
        return error_response(400, "This form has expired. Reload the page and try again.")

    @app.errorhandler(NotFound)
    def not_found(exc: NotFound) -> tuple[Response | str, int]:
        return error_response(404)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response | str, int]:
        status = exc.code or 500
        # A description given at abort() is meant for the person; werkzeug's defaults are not.
        custom = exc.description if exc.description != type(exc).description else None
        body, code = error_response(status, None if status in (429, 500) else custom)
        allowed = dict(exc.get_headers()).get("Allow")
        if allowed and isinstance(body, Response):
            body.headers["Allow"] = allowed  # a 405 says what is allowed
        return body, code

    @app.errorhandler(OperationalError)
    def database_down(exc: OperationalError) -> tuple[Response | str, int]:
        log.error("database unavailable: %s", exc.orig)
        # The page's header asks who is signed in, which needs the database: render it as
        # seen by a visitor, or the error page itself would fail with a bare 500.
        g._login_user = login_manager.anonymous_user()
        return error_response(ServiceUnavailable.code)

    @app.errorhandler(RedisConnectionError)
    @app.errorhandler(RedisTimeoutError)
    def redis_down(exc: Exception) -> tuple[Response | str, int]:
        # Queues, live progress and rate limits live in Redis: an outage is brief, not a bug.
        log.error("redis unavailable: %s", exc)
        return error_response(ServiceUnavailable.code)

    @app.errorhandler(StorageError)
    def storage_error(exc: StorageError) -> tuple[Response | str, int]:
        if isinstance(exc, ObjectNotFound):
            return error_response(404)
        log.error("object storage unavailable: %s", exc)
        return error_response(ServiceUnavailable.code)

    @app.errorhandler(OverflowError)
    def number_too_large(exc: OverflowError) -> tuple[Response | str, int]:
        # A number from the request (an id in a form or JSON body) too big for the database.
        log.warning("number out of range on %s %s: %s", request.method, request.path, exc)
        return error_response(400, "A number in the request is too large.")

    @app.errorhandler(DataError)
    def value_out_of_range(exc: DataError) -> tuple[Response | str, int]:
        # PostgreSQL refusing a value from the request that SQLite would have taken: an id past
        # int4 (SQLSTATE 22003), or text longer than its column. The input check that should
        # have caught it is missing, hence the warning.
        db.session.rollback()
        log.warning("value refused by the database on %s %s: %s", request.method, request.path,
                    exc.orig)  # fmt: skip
        if getattr(exc.orig, "sqlstate", None) == "22003":
            return error_response(400, "A number in the request is too large.")
        return error_response(400, "A value in the request is too long or not valid.")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response | str, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(InternalServerError.code)
