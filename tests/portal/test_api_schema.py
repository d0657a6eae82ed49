"""The OpenAPI schema: it validates, it renders, and the API keeps to it.

A schemathesis run (in-process, through the WSGI application, with the test database) calls every operation
of `/api/schema/` as an analyst with a token, with generated input, and fails on any server error and on any
answer that breaks the documented schema, the documented error bodies included. It covers whatever
endpoints exist when it runs.
"""

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from cases.reports.services import report_snapshot_create
from frameworks.services import CATALOG_DIR, catalog_load
from portal.api.throttling import TokenClientThrottle
from portal.services import api_token_create
from tests.factories import CredentialFactory

OWASP = "owasp-nhi-top10-2025"


def test_the_schema_validates_without_warnings() -> None:
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=StringIO(), stderr=StringIO())


def test_the_schema_renders_and_documents_the_error_bodies(client: Any) -> None:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    components = schema["components"]["schemas"]
    assert components["FieldErrors"]["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    assert set(components["ErrorDetail"]["required"]) == {"detail"}
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"401", "429"} <= set(operation["responses"]), f"{method.upper()} {path}"


def test_the_docs_page_renders_for_a_signed_in_person(client: Any, analyst: Any) -> None:
    client.force_login(analyst)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    # The UI's scripts come with the portal (drf-spectacular-sidecar), not from a CDN.
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn." not in page


@pytest.fixture
def in_process_requests() -> Iterator[None]:
    """Keep the test's database connection across the WSGI requests, as Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def analyst_bearer(analyst: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    # Token clients are throttled; this run sends far more than a minute's budget.
    monkeypatch.setattr(TokenClientThrottle, "THROTTLE_RATES", {"token": "1000000/min"})
    cache.clear()
    _, raw = api_token_create(actor=analyst, user_id=analyst.pk, name="schemathesis")
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def some_rows(analyst: Any, open_case: Any, payments_identity: Any) -> None:
    """A row of each kind, so that details and filters have something to find."""
    catalog_load(path=CATALOG_DIR / f"{OWASP}.json")
    CredentialFactory.create(nhi=payments_identity)
    open_case()
    report_snapshot_create(actor=analyst, framework_key=OWASP, fmt="csv", since=None, until=None)


@pytest.fixture
def api_schema(in_process_requests: None, some_rows: None) -> Any:
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())


def exercise(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        # Each request in its own savepoint, rolled back: on PostgreSQL a failed statement would otherwise
        # abort the test's transaction and fail every operation after it.
        savepoint = transaction.savepoint()
        try:
            case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance])
        finally:
            transaction.savepoint_rollback(savepoint)

    run()


# Valid input reaches the services; invalid input must get the documented 400 (or 401/403/404) bodies.
EXAMPLES = {GenerationMode.POSITIVE: 4, GenerationMode.NEGATIVE: 2}


def test_every_operation_keeps_to_the_schema(api_schema: Any, analyst_bearer: dict[str, str]) -> None:
    failures, operations = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in EXAMPLES:
            try:
                exercise(operation, mode, analyst_bearer)
            # Every operation runs; all failures are reported together.
            except (Exception, FailureGroup) as error:
                failures.append(f"{operation.label} ({mode.value}): {error}")
    assert operations > 20, "the schema lost its operations"
    assert not failures, "\n\n".join(failures)
