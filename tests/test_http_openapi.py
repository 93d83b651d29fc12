"""The live HTTP API against its own OpenAPI 3.1 document (``GET /openapi.json``), with schemathesis: generated
requests — valid and invalid bodies, missing and wrong credentials, other methods — get answers whose status,
content type, headers and body the document declares, and never a server error. Bounded: a few dozen examples per
operation, so the run takes seconds on two cores."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

ADMIN = {"X-User-Token": "omni-demo-admin-token"}


@pytest.fixture(scope="module")
def operations(demo: dict[str, Any]) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{demo['http_url']}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]  # Err raises


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_live_api_matches_its_openapi_document(operations: list[Any], demo: dict[str, Any],
                                                   mode: GenerationMode) -> None:
    """schemathesis' strategies under hypothesis directly (its pytest plugin's fixture loader does not run on
    pytest 9): every documented operation, valid (positive) and invalid (negative) requests."""
    assert "POST /v1/query" in {op.label for op in operations} and len(operations) >= 6
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.path != "/v1/query":
            continue  # the GET endpoints take no input to get wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=30 if operation.path == "/v1/query" else 5, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            # Valid JSON need not be valid SQL: a 400 for schema-valid random text is right, so the check that
            # every schema-valid request is accepted does not apply.
            case.call_and_validate(base_url=demo["http_url"], headers=ADMIN,
                                   excluded_checks=[schemathesis.checks.positive_data_acceptance])

        check()


def test_the_document_is_openapi_3_1_and_covers_every_route(demo: dict[str, Any]) -> None:
    document = httpx.get(f"{demo['http_url']}/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {"/v1/query", "/healthz", "/readyz", "/metrics", "/openapi.json", "/",
                                      "/console/config"}
    responses = document["paths"]["/v1/query"]["post"]["responses"]
    assert set(responses) == {"200", "400", "401", "403", "413", "429", "499", "500", "501", "503", "504"}
    limited = document["components"]["responses"][responses["429"]["$ref"].rsplit("/", 1)[1]]
    assert {"Retry-After", "X-OmniSQL-Trace-Id"} <= set(limited["headers"])  # when to retry, in seconds
