"""schemathesis against the app's own OpenAPI description (app/openapi.yaml), in process.

Signed in as a person who owns a dataset, items, a run and a generation, it sends schema-valid
and schema-breaking requests to every JSON operation, half of them aimed at the person's own
ids: no answer may be a 5xx, every answer must match the description (status, content type,
body schema). Then every operation is called without a session: none may answer with data.
"""

from __future__ import annotations

import os
import time

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import csrf_token
from tests.reliability.conftest import build_world, signed_in_client

# Examples per operation and mode: ~17 operations x 2 modes x 15 keeps this well under 60 s
# on a shared 2-core machine; ATTUNE_FUZZ_EXAMPLES=200 for a deeper run by hand.
EXAMPLES = int(os.environ.get("ATTUNE_FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


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
    owned = world.path_values()
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", any_db_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16
    calls: list[int] = []
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy, aim_at_own=st.booleans())
            def fuzz(case: schemathesis.Case, aim_at_own: bool) -> None:
                if aim_at_own and case.path_parameters:
                    for name in case.path_parameters:
                        case.path_parameters[name] = owned[name]
                response = case.call(**auth)
                calls.append(response.status_code)
                case.validate_response(response, checks=CHECKS)

            try:
                fuzz()
            except Unsatisfiable:
                # Nothing to break in an operation without parameters or body.
                assert mode is GenerationMode.NEGATIVE, operation.label
    elapsed = time.monotonic() - started
    print(f"schemathesis: {len(calls)} calls in {elapsed:.1f} s, statuses {sorted(set(calls))}")
    assert not [status for status in calls if status >= 500]
    assert {200, 201, 404, 422} <= set(calls)  # the fuzzing reached real work, not only refusals


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
        assert "Sign in" in response.get_json()["error"]
        checked += 1
    assert checked >= 15
