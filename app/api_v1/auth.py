"""Who is calling /api/v1: the Bearer key, its owner and its scopes. Sessions do not count here.

The key is checked once per request and kept on `g`: the rate limiter (which runs first, in
the app's before_request) and the blueprint's scope check both ask for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from flask import current_app, g, request
from flask_limiter.util import get_remote_address

from app.accounts.models import User
from app.apikeys.models import ApiKey
from app.apikeys.services import KEY_PREFIX, KeyRefused, authenticate_key, key_allows
from app.extensions import get_settings

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Caller:
    """The key a request came with and the person it belongs to."""

    key: ApiKey
    user: User


class ScopeMissing(Exception):
    """The key is valid but lacks the scope the operation needs."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"This API key is read-only; this operation needs a key with {scope} "
                         "access. Create one on your account's API keys page.")  # fmt: skip
        self.scope = scope


def needs_write(view: F) -> F:
    """Mark a GET view that belongs to a write flow (signing upload parts) as needing write."""
    view.api_scope = "write"  # type: ignore[attr-defined]
    return view


def current_caller() -> Caller:
    """The authenticated caller, or KeyRefused (cached on g for the rest of the request)."""
    if "api_caller" not in g:
        try:
            key, user = authenticate_key(_presented_key())
            g.api_caller = Caller(key, user)
        except KeyRefused as exc:
            g.api_caller = exc
    if isinstance(g.api_caller, KeyRefused):
        raise g.api_caller
    return g.api_caller


def _presented_key() -> str:
    header = request.headers.get("Authorization", "")
    if not header.strip():
        raise KeyRefused(
            "missing", f"Send your API key in the header “Authorization: Bearer {KEY_PREFIX}…”."
        )
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise KeyRefused("malformed", f"The Authorization header must read “Bearer {KEY_PREFIX}…”.")
    return value.strip()


def required_scope() -> str:
    """ "read" for reading operations, "write" for the rest and for views marked needs_write."""
    view = current_app.view_functions.get(request.endpoint or "")
    marked = getattr(view, "api_scope", None)
    return marked or ("read" if request.method in READ_METHODS else "write")


def check_scope(caller: Caller) -> None:
    """Refuse a key without the scope this request needs."""
    scope = required_scope()
    if not key_allows(caller.key, scope):
        raise ScopeMissing(scope)


def rate_limit_key() -> str:
    """Limiter key: the API key; requests without a valid key count per address."""
    try:
        caller = current_caller()
    except KeyRefused:
        return f"api-address:{get_remote_address()}"
    # Under "account:<id>:", as the browser's per-account limits, so the erasure finds it.
    return f"account:{caller.user.id}:api-key:{caller.key.id}"


def api_rate_limit() -> str:
    """ATTUNE_API_REQUESTS_PER_MINUTE requests per minute."""
    return f"{get_settings().api_requests_per_minute} per minute"


def upload_rate_key() -> str:
    """Limiter key for upload starts: the account, as for the browser's uploads."""
    return f"account:{current_caller().user.id}:api-uploads"
