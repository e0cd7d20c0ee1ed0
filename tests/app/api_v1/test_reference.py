"""app/openapi.yaml describes exactly the /api/v1 operations the app serves, and /docs/api shows
every one of them to people, without scripts, with an anchor per problem type."""

from __future__ import annotations

import re

from flask import Flask

from app.api_docs import openapi_spec
from app.errors import PROBLEM_TYPES


def served_operations(app: Flask) -> set[tuple[str, str]]:
    """(METHOD, /api/v1/path/{param}) for every route of the API blueprint."""
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        found |= {(m, path) for m in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    return found


def described_operations() -> dict[tuple[str, str], dict]:
    """(METHOD, path) -> operation for every /api/v1 operation of the description."""
    return {
        (method.upper(), path): operation
        for path, item in openapi_spec()["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in item.items()
        if method in ("get", "post", "patch", "put", "delete")
    }


def test_the_description_covers_every_api_v1_operation_and_nothing_else(app: Flask) -> None:
    described = described_operations()
    assert served_operations(app) == set(described)
    assert len(described) == 18
    for label, operation in described.items():
        assert operation["security"] == [{"bearer": []}], label
        assert operation.get("operationId") and operation.get("tags"), label
        for status in ("401", "429", "503"):
            assert status in operation["responses"], (label, status)
        if label[0] != "GET" or label[1].endswith(("/parts", "/parts/{part_number}", "/target")):
            assert "403" in operation["responses"], label


def test_the_reference_page_lists_every_operation_and_problem_type(app: Flask) -> None:
    page = app.test_client().get("/docs/api")
    assert page.status_code == 200
    html = page.text
    for (method, path), operation in described_operations().items():
        assert f'id="{operation["operationId"]}"' in html
        assert f"<code>{method} {path}</code>" in html
    for slug in PROBLEM_TYPES.values():
        assert f'id="problem-{slug}"' in html
    assert "<script>" not in html and "<script " not in html.split("</head>", 1)[1]
    assert "Authorization: Bearer att_live_" in html
    assert 'id="schema-Training"' in html and "<code>progress.eta_seconds</code>" in html
