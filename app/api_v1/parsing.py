"""Reading /api/v1 requests: JSON bodies checked field by field, and cursor pagination.

Every refusal is an Invalid with a message per field, answered 422 problem+json, so a client
can show the person exactly what to fix.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import request

from app.db_types import MAX_ID

DEFAULT_PAGE = 20
MAX_PAGE = 100


class Invalid(Exception):
    """The request is not what the operation takes; `errors` maps each field to its message."""

    def __init__(
        self, errors: dict[str, str], detail: str = "Some fields need another look."
    ) -> None:
        super().__init__(detail)
        self.errors = errors


class Malformed(Exception):
    """The body is not a JSON object at all (400)."""


def json_body(allowed: Iterable[str], optional_body: bool = False) -> dict[str, Any]:
    """The JSON object sent, refusing fields the operation does not know (typos fail loudly)."""
    if optional_body and not request.get_data(cache=True):
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Malformed("Send a JSON object with Content-Type: application/json.")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise Invalid({name: "Unknown field." for name in unknown})
    return body


def text_field(
    body: dict[str, Any], name: str, errors: dict[str, str], required: bool = False
) -> str | None:
    """A text field, or None when absent; a wrong type or a missing required one is noted."""
    value = body.get(name)
    if value is None:
        if required:
            errors[name] = "Required."
        return None
    if not isinstance(value, str):
        errors[name] = "Must be text."
        return None
    return value


def int_field(
    body: dict[str, Any],
    name: str,
    errors: dict[str, str],
    required: bool = False,
    low: int = 0,
    high: int = MAX_ID,
) -> int | None:
    """A whole-number field within [low, high], or None when absent."""
    value = body.get(name)
    if value is None:
        if required:
            errors[name] = "Required."
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        errors[name] = "Must be a whole number."
        return None
    if not low <= value <= high:
        errors[name] = f"Must be between {low} and {high}."
        return None
    return value


@dataclass(frozen=True)
class PageRequest:
    """Where a page starts (after the last row of the page before) and how many rows it holds."""

    last_id: int | None
    limit: int


def page_request() -> PageRequest:
    """`limit` (1-100, default 20) and `cursor` (as given out by a previous page)."""
    errors: dict[str, str] = {}
    raw_limit = request.args.get("limit", str(DEFAULT_PAGE))
    limit = int(raw_limit) if raw_limit.isdigit() and len(raw_limit) < 4 else 0
    if not 1 <= limit <= MAX_PAGE:
        errors["limit"] = f"Must be a whole number from 1 to {MAX_PAGE}."
    cursor = request.args.get("cursor")
    last_id = None
    if cursor is not None:
        last_id = _read_cursor(cursor)
        if last_id is None:
            errors["cursor"] = "Not a cursor this API gave out; start again without one."
    if errors:
        raise Invalid(errors)
    return PageRequest(last_id, limit)


def page_body(rows: list[Any], page: PageRequest, shape: Any) -> dict[str, Any]:
    """{"data": [...], "next_cursor": ...} from up to limit + 1 rows (the extra: more follow)."""
    more = len(rows) > page.limit
    shown = rows[: page.limit]
    cursor = _make_cursor(shown[-1].id) if more and shown else None
    return {"data": [shape(row) for row in shown], "next_cursor": cursor}


def _make_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> int | None:
    if len(cursor) > 40:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    kind, _, number = text.partition(":")
    if kind != "id" or not number.isdigit() or int(number) > MAX_ID:
        return None
    return int(number)
