"""schemathesis against the app's own OpenAPI description (app/openapi.yaml), in process.

Signed in as a person who owns a dataset, items, a run and a generation, it sends schema-valid
and schema-breaking requests to every JSON operation of the browser, half of them aimed at the
person's own ids: no answer may be a 5xx, every answer must match the description (status,
content type, body schema). The same for every /api/v1 operation with the person's API key.
Then every operation is called without a session or key: none may answer with data.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.accounts import signed_in_client
from tests.support.apps import DATABASES, running_app
from tests.support.web import csrf_token
from tests.support.world import build_world

PUBLIC_API = "/api/v1/"
# Examples per operation and mode: ~18 operations x 2 modes x 15 keeps this well under 60 s
# on a shared 2-core machine; ATTUNE_FUZZ_EXAMPLES=200 for a deeper run by hand.
EXAMPLES = int(os.environ.get("ATTUNE_FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def aim_at_own(case: schemathesis.Case, owned: dict[str, Any]) -> None:
    """Point the case's ids (path parameters, a body's dataset_id) at the person's objects."""
    for name in case.path_parameters or {}:
        case.path_parameters[name] = owned[name]
    if isinstance(case.body, dict) and "dataset_id" in case.body:
        case.body["dataset_id"] = owned["dataset_id"]


def fuzz(operations: list[Any], auth: dict[str, Any], owned: dict[str, Any]) -> list[int]:
    """Positive and negative examples for each operation; returns every status seen."""
    calls: list[int] = []
    for operation in operations:
        call_described_examples(operation, auth, owned, calls)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz_one(operation, mode, auth, owned, calls)
            except Unsatisfiable:
                # Nothing to break in an operation without parameters or body.
                assert mode is GenerationMode.NEGATIVE, operation.label
    return calls


def call_described_examples(
    operation: Any, auth: dict[str, Any], owned: dict[str, Any], calls: list[int]
) -> None:
    """Each example the description gives, aimed at the person's own ids. Generated cases reach
    a 201 only by chance (a valid family and preset drawn at random), so this is what makes
    "the fuzzing reached real work" hold on every run, whatever ran before."""
    for strategy in operation.get_strategies_from_examples():

        @settings(
            max_examples=1,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def one(case: schemathesis.Case) -> None:
            aim_at_own(case, owned)
            response = case.call(**auth)
            calls.append(response.status_code)
            case.validate_response(response, checks=CHECKS)

        one()


def fuzz_one(
    operation: Any, mode: GenerationMode, auth: dict[str, Any], owned: dict[str, Any],
    calls: list[int],
) -> None:  # fmt: skip
    """One operation in one mode. Every other case, the first (the description's example)
    included, is aimed at the person's own ids, so real work is reached whatever ids the
    database hands out (PostgreSQL sequences carry on between tests)."""
    turns = itertools.count()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: schemathesis.Case) -> None:
        if next(turns) % 2 == 0:
            aim_at_own(case, owned)
        response = case.call(**auth)
        calls.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    one()


def test_every_json_operation_survives_fuzzing_and_matches_its_description(
    any_db_app: Flask,
) -> None:
    world = build_world(any_db_app)
    client = signed_in_client(any_db_app, "owner@example.com")
    session = client.get_cookie("session")
    assert session is not None
    auth = {
        "headers": {"X-CSRFToken": csrf_token(client.get("/dashboard").text)},
        "cookies": {"session": session.value},
    }
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", any_db_app)
    operations = [
        op for op in (result.ok() for result in schema.get_all_operations())
        if not op.path.startswith(PUBLIC_API)
    ]  # fmt: skip
    assert len(operations) >= 16
    started = time.monotonic()
    calls = fuzz(operations, auth, world.path_values())
    elapsed = time.monotonic() - started
    print(f"schemathesis: {len(calls)} calls in {elapsed:.1f} s, statuses {sorted(set(calls))}")
    assert not [status for status in calls if status >= 500]
    assert {200, 201, 404, 422} <= set(calls)  # the fuzzing reached real work, not only refusals


@pytest.fixture(params=DATABASES)
def keyed_app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app with a rate limit the fuzzer's few hundred calls a minute stay under."""
    with running_app(request, request.param, {"api_requests_per_minute": 100_000}) as app:
        yield app


def test_every_api_v1_operation_survives_fuzzing_with_a_key(keyed_app: Flask) -> None:
    world = build_world(keyed_app)
    auth = {"headers": {"Authorization": f"Bearer {world.api_key}"}}
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", keyed_app)
    operations = [
        op for op in (result.ok() for result in schema.get_all_operations())
        if op.path.startswith(PUBLIC_API)
    ]  # fmt: skip
    assert len(operations) == 18
    # Every item_id of /api/v1 is an upload's: aim at the one still in flight.
    owned = {**world.path_values(), "item_id": world.uploading_item_id}
    started = time.monotonic()
    calls = fuzz(operations, auth, owned)
    elapsed = time.monotonic() - started
    print(f"schemathesis /api/v1: {len(calls)} calls in {elapsed:.1f} s, "
          f"statuses {sorted(set(calls))}")  # fmt: skip
    assert not [status for status in calls if status >= 500]
    assert {200, 201, 204, 400, 404, 409, 422} <= set(calls)


def test_every_json_operation_refuses_strangers(any_db_app: Flask) -> None:
    world = build_world(any_db_app)
    stranger = any_db_app.test_client()
    token = csrf_token(stranger.get("/sign-in").text)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", any_db_app)
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.definition.raw.get("security") == []:
            continue  # public by description (/healthz)
        path = operation.path
        for name, value in world.path_values().items():
            path = path.replace("{" + name + "}", str(value))
        response = stranger.open(
            path, method=operation.method.upper(), json={}, headers={"X-CSRFToken": token}
        )
        assert response.status_code == 401, (operation.label, response.status_code)
        if operation.path.startswith(PUBLIC_API):
            assert response.mimetype == "application/problem+json", operation.label
            assert response.get_json()["reason"] == "missing", operation.label
        else:
            assert "Sign in" in response.get_json()["error"]
        checked += 1
    assert checked >= 15 + 17
