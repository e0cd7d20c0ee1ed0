"""The OpenAPI description of the JSON endpoints, served at /api/openapi.json."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

bp = Blueprint("api_docs", __name__)
SPEC_PATH = Path(__file__).with_name("openapi.yaml")


@functools.cache
def openapi_spec() -> dict[str, Any]:
    """The parsed app/openapi.yaml (read once per process)."""
    return yaml.safe_load(SPEC_PATH.read_text())


@bp.route("/api/openapi.json")
def openapi() -> Response:
    """The API description, for people and for tools such as schemathesis."""
    return jsonify(openapi_spec())
