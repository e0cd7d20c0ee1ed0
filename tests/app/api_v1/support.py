"""A script's view of /api/v1: a key created on the key page, then requests with it alone."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.web import csrf_token

_SHOWN_KEY = re.compile(r'id="new-key-value" type="text" value="(att_live_[A-Za-z0-9]+)"')


def create_key_in_browser(
    client: FlaskClient, name: str = "script", access: str = "read write"
) -> str:
    """Create a key through the API keys page, as a person would; returns the key shown."""
    token = csrf_token(client.get("/account/api-keys").text)
    response = client.post(
        "/account/api-keys", data={"csrf_token": token, "name": name, "access": access}
    )
    assert response.status_code == 201, response.text[-800:]
    match = _SHOWN_KEY.search(response.text)
    assert match, "the new key is not on the page"
    return match.group(1)


class Api:
    """Calls /api/v1 with a Bearer key and nothing else: no cookie, no CSRF token."""

    def __init__(self, app: Flask, key: str | None) -> None:
        self.client = app.test_client(use_cookies=False)
        self.key = key

    def call(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        """One request to /api/v1<path>."""
        headers = dict(kwargs.pop("headers", {}))
        if self.key is not None:
            headers.setdefault("Authorization", f"Bearer {self.key}")
        return self.client.open("/api/v1" + path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        """GET /api/v1<path>."""
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        """POST JSON to /api/v1<path>."""
        return self.call("POST", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        """DELETE /api/v1<path>."""
        return self.call("DELETE", path, **kwargs)


def assert_problem(response: TestResponse, status: int, *fields: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with `status`, naming `fields` in its errors."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == status
    assert "/docs/api#problem-" in body["type"] and body["detail"]
    for name in fields:
        assert name in body.get("errors", {}), (name, body)
    return body
