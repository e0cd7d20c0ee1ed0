"""The OpenAPI description of the JSON endpoints, served at /api/openapi.json, and the public
API's reference page for people at /docs/api, rendered on the server from the same file (no
script, so the page works under the `script-src 'self'` policy and without a CDN)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, jsonify, render_template
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from app.errors import PROBLEM_TYPES

bp = Blueprint("api_docs", __name__)
SPEC_PATH = Path(__file__).with_name("openapi.yaml")
PUBLIC_PREFIX = "/api/v1/"
METHODS = ("get", "post", "patch", "put", "delete")
MAX_DEPTH = 3
# Answers every operation can give; the page explains them once instead of under each one.
COMMON_STATUSES = ("401", "429", "503")
# What each problem type means and what a client should do about it (the page's anchors).
PROBLEM_HELP = {
    "bad-request": "The body is not a JSON object. Send it with Content-Type: application/json.",
    "unauthorized": "No key, or the key is malformed or unknown (revoked keys are deleted), or "
    "its account is being deleted; `reason` says which. Create a key on the API keys page.",
    "forbidden": "The key is read-only and the operation writes. Use a read-and-write key.",
    "not-found": "No such object, or it belongs to someone else (the two look the same).",
    "method-not-allowed": "The path exists but not with this method; `Allow` lists the methods.",
    "conflict": "The request is fine but the account cannot do it now: no active plan, the "
    "quota or the concurrent runs are used up, the dataset has no ready files, the run has "
    "already finished; or a request with the same Idempotency-Key is still at work "
    "(retry after `Retry-After`).",
    "too-large": "The request body is over 64 MB. File bytes go to the presigned URLs, not here.",
    "invalid": "Some fields are wrong; `errors` has a message per field.",
    "rate-limited": "Too many requests with this key; wait `Retry-After` seconds.",
    "server-error": "Our fault; it has been logged. Retry later.",
    "unavailable": "A dependency (database, Redis, storage) is briefly down. Retry in a minute.",
}
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


@dataclass(frozen=True)
class Field:
    """One row of a schema table: a dotted name, its type in words, whether it is required."""

    name: str
    kind: str
    required: bool
    description: str


@dataclass
class Operation:
    """One public operation as the reference page lists it."""

    method: str
    path: str
    operation_id: str
    summary: str
    description: str
    parameters: list[Field] = field(default_factory=list)
    body: list[Field] = field(default_factory=list)
    example: Any = None
    responses: list[tuple[str, str, str]] = field(default_factory=list)  # status, text, schema


@functools.cache
def openapi_spec() -> dict[str, Any]:
    """The parsed app/openapi.yaml (read once per process)."""
    return yaml.safe_load(SPEC_PATH.read_text())


@bp.route("/api/openapi.json")
def openapi() -> Response:
    """The API description, for people and for tools such as schemathesis."""
    return jsonify(openapi_spec())


@bp.route("/docs/api")
def reference() -> str:
    """The /api/v1 reference: authentication, errors, every operation and its shapes."""
    spec = openapi_spec()
    return render_template(
        "api_docs/reference.html",
        info=spec["info"],
        tags=[(tag, public_operations(tag["name"])) for tag in spec.get("tags", [])],
        schemas=_public_schemas(),
        problems=[(slug, status, PROBLEM_HELP[slug]) for status, slug in PROBLEM_TYPES.items()],
        text=inline_markdown,
    )


def inline_markdown(text: str) -> Markup:
    """The spec's descriptions with `code` and **bold** marked up; everything else escaped."""
    html = str(escape(text.strip()))
    html = _BOLD.sub(r"<strong>\1</strong>", _CODE.sub(r"<code>\1</code>", html))
    return Markup(html)


@functools.cache
def public_operations(tag: str) -> list[Operation]:
    """The /api/v1 operations carrying `tag`, in the order of the file."""
    found = []
    for path, item in openapi_spec()["paths"].items():
        if not path.startswith(PUBLIC_PREFIX):
            continue
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item and tag in item[method].get("tags", []):
                found.append(_operation(method, path, item[method], shared))
    return found


def _operation(method: str, path: str, raw: dict[str, Any], shared: list[Any]) -> Operation:
    operation = Operation(
        method.upper(), path, raw.get("operationId", ""), raw.get("summary", ""),
        raw.get("description", ""),
    )  # fmt: skip
    for parameter in [*shared, *raw.get("parameters", [])]:
        parameter = _resolve(parameter)
        where = parameter["in"]
        operation.parameters.append(
            Field(f"{parameter['name']} ({where})", _kind(parameter.get("schema", {})),
                  bool(parameter.get("required")), parameter.get("description", ""))
        )  # fmt: skip
    body = raw.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        operation.body = schema_fields(body["schema"])
        operation.example = body.get("example", body["schema"].get("example"))
    for status, response in raw.get("responses", {}).items():
        if status in COMMON_STATUSES:
            continue
        response = _resolve(response)
        content = next(iter(response.get("content", {}).values()), {})
        operation.responses.append(
            (status, response.get("description", ""), _kind(content.get("schema", {})))
        )
    return operation


def schema_fields(schema: dict[str, Any], prefix: str = "", depth: int = 0) -> list[Field]:
    """The properties of an object schema as rows, nested objects as dotted names."""
    schema = _resolve(schema)
    required = set(schema.get("required", []))
    rows = []
    for name, raw in schema.get("properties", {}).items():
        prop = _resolve(raw)
        description = prop.get("description", "")
        rows.append(Field(prefix + name, _kind(raw), name in required, description.strip()))
        if "$ref" not in raw and prop.get("properties") and depth < MAX_DEPTH:
            rows += schema_fields(prop, f"{prefix}{name}.", depth + 1)
    return rows


def _public_schemas() -> list[tuple[str, str, list[Field]]]:
    """The schemas the public operations return, with their fields."""
    names = ("Dataset", "DatasetItem", "UploadTarget", "Training", "Artifact", "Family", "Problem")
    schemas = openapi_spec()["components"]["schemas"]
    return [(n, schemas[n].get("description", ""), schema_fields(schemas[n])) for n in names]


def _kind(schema: dict[str, Any]) -> str:
    """A schema's type in words: "integer", "array of Training", "string or null"."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    kind = schema.get("type", "any")
    if kind == "array":
        kind = f"array of {_kind(schema.get('items', {}))}"
    if "enum" in schema:
        kind += ": " + ", ".join(str(value) for value in schema["enum"])
    return f"{kind} or null" if schema.get("nullable") else kind


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local $ref ("#/components/...")."""
    while "$ref" in node:
        target: Any = openapi_spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node
