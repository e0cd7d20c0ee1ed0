"""The /api/v1 blueprint: Bearer keys only (no session, so no CSRF), a rate limit per key, and
every domain error mapped to an RFC 9457 problem."""

from __future__ import annotations

from flask import Blueprint, Response

from app.api_v1.auth import (
    ScopeMissing,
    api_rate_limit,
    check_scope,
    current_caller,
    rate_limit_key,
)
from app.api_v1.idempotency import KeyReused, StillRunning
from app.api_v1.parsing import Invalid, Malformed
from app.apikeys.services import KeyRefused
from app.datasets.services import DatasetError
from app.errors import problem_response
from app.extensions import csrf, limiter
from app.trainings.run_json import PARAMETERS
from app.trainings.services import ParamsError, RunError, UnusableFilesError

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
# Cookies are never read here, so a forged cross-site request carries no credential.
csrf.exempt(bp)
# One allowance per key for the whole API (and per address for requests without a valid key).
limiter.shared_limit(api_rate_limit, scope="api-v1", key_func=rate_limit_key)(bp)

Reply = tuple[Response, int]
REALM = 'Bearer realm="Attune API"'


@bp.before_request
def authenticate() -> None:
    """Every operation needs a valid key with the operation's scope."""
    check_scope(current_caller())


@bp.errorhandler(KeyRefused)
def key_refused(exc: KeyRefused) -> Reply:
    """401 with the reason, never a redirect to the sign-in page."""
    challenge = REALM if exc.reason == "missing" else f'{REALM}, error="invalid_token"'
    return problem_response(
        401, str(exc), headers={"WWW-Authenticate": challenge}, reason=exc.reason
    )


@bp.errorhandler(ScopeMissing)
def scope_missing(exc: ScopeMissing) -> Reply:
    """403: the key is fine but may not do this."""
    challenge = f'{REALM}, error="insufficient_scope", scope="{exc.scope}"'
    return problem_response(403, str(exc), headers={"WWW-Authenticate": challenge})


@bp.errorhandler(Malformed)
def malformed(exc: Malformed) -> Reply:
    """400: not a JSON object."""
    return problem_response(400, str(exc))


@bp.errorhandler(Invalid)
def invalid(exc: Invalid) -> Reply:
    """422 with a message per field."""
    return problem_response(422, str(exc), errors=exc.errors)


@bp.errorhandler(DatasetError)
def dataset_error(exc: DatasetError) -> Reply:
    """A dataset or upload rule: 422, with the field when the rule names one."""
    return problem_response(422, str(exc), errors={exc.field: str(exc)} if exc.field else None)


@bp.errorhandler(ParamsError)
def params_error(exc: ParamsError) -> Reply:
    """Run settings out of range: 422, parameters named as "parameters.<name>"."""
    errors = {
        (f"parameters.{field}" if field in PARAMETERS else field): message
        for field, message in exc.errors.items()
    }
    return problem_response(422, str(exc), errors=errors)


@bp.errorhandler(UnusableFilesError)
def unusable_files(exc: UnusableFilesError) -> Reply:
    """Files the base model cannot train on: 409 with `files`, the reason for each file."""
    return problem_response(409, str(exc), files=exc.files)


@bp.errorhandler(RunError)
def run_error(exc: RunError) -> Reply:
    """The request is fine but the account's state refuses it (plan, quota, dataset): 409."""
    return problem_response(409, str(exc))


@bp.errorhandler(KeyReused)
def key_reused(exc: KeyReused) -> Reply:
    """The Idempotency-Key belongs to another request: 422."""
    message = "This Idempotency-Key was used for a different request in the last 24 hours."
    return problem_response(422, message, errors={"Idempotency-Key": message})


@bp.errorhandler(StillRunning)
def still_running(exc: StillRunning) -> Reply:
    """The first request with this Idempotency-Key is still at work: retry in a moment."""
    message = "A request with this Idempotency-Key is still being processed; retry shortly."
    return problem_response(409, message, headers={"Retry-After": "1"})
