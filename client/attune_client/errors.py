"""What can go wrong talking to Attune: every refusal the API answers (RFC 9457 problem+json)
becomes an ApiError subclass carrying the detail and the per-field errors."""

from __future__ import annotations

from typing import Any

import httpx


class AttuneError(Exception):
    """Anything the client could not do; the message is for the person."""


class ConnectionFailed(AttuneError):
    """The server could not be reached (or stopped answering) after the retries."""


class TimedOut(AttuneError):
    """A wait ran past its deadline; the thing waited for is still going on the server."""


class ApiError(AttuneError):
    """The API refused a request: status, the problem's title and detail, field errors."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.title: str = str(problem.get("title") or "Error")
        self.detail: str = str(problem.get("detail") or self.title)
        self.type: str | None = problem.get("type")
        errors = problem.get("errors")
        self.errors: dict[str, str] = errors if isinstance(errors, dict) else {}
        files = problem.get("files")
        self.files: dict[str, str] = files if isinstance(files, dict) else {}
        super().__init__(self._message())

    def _message(self) -> str:
        lines = [self.detail]
        lines += [f"  {field}: {message}" for field, message in self.errors.items()]
        lines += [f"  {name}: {reason}" for name, reason in self.files.items()]
        return "\n".join(lines)


class BadRequest(ApiError):
    """400: the body was not a JSON object."""


class Unauthorized(ApiError):
    """401: no key, a malformed key, or one the server does not know (revoked)."""


class Forbidden(ApiError):
    """403: the key is valid but lacks the scope (a read-only key asked to write)."""


class NotFound(ApiError):
    """404: no such object, or it belongs to someone else."""


class Conflict(ApiError):
    """409: the account's state refuses it (plan, quota, a run still going, unusable files)."""


class Invalid(ApiError):
    """422: some fields need another look; `errors` maps each field to its message."""


class RateLimited(ApiError):
    """429: too many requests for this key; retried by the client before it is raised."""


class ServerError(ApiError):
    """5xx: the service failed or is briefly unavailable."""


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    422: Invalid, 429: RateLimited,
}  # fmt: skip


def error_from_response(response: httpx.Response) -> ApiError:
    """The typed error for a refused response, with its problem+json body when it has one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip()[:300]
        body = {"title": response.reason_phrase, "detail": text or response.reason_phrase}
    cls = BY_STATUS.get(response.status_code)
    if cls is None:
        cls = ServerError if response.status_code >= 500 else ApiError
    return cls(response.status_code, body)
