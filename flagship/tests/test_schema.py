"""The OpenAPI schema, the interactive docs, and schemathesis against the whole API.

Schemathesis loads /api/schema/ from the WSGI application, generates a few requests per
operation and checks every answer: no 5xx anywhere; under /api/, a documented status, content
type and body (problem details for errors). OFREP formats its own errors, so only the 5xx check
applies there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts import services as account_services
from accounts.models import User
from flags.services import flags as flag_services
from flags.services import projects as project_services

API_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Routes an environment key (not a person) calls.
KEYED_PREFIXES = (
    "/api/v1/evaluate",
    "/api/v1/ruleset",
    "/api/v1/sdk/",
    "/api/v1/stream",
    "/ofrep/",
)


def test_schema__served_as_openapi_3(client: Client) -> None:
    response = client.get("/api/schema/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["apiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schema["components"]["securitySchemes"]["apiKeyAuth"]["description"],
    }
    assert schema["components"]["securitySchemes"]["jwtAuth"]["scheme"] == "bearer"
    assert "Problem" in schema["components"]["schemas"]


def test_schema__api_operations_document_problems_ofrep_not(client: Client) -> None:
    paths = client.get("/api/schema/", headers={"Accept": "application/json"}).json()["paths"]
    token = paths["/api/v1/auth/token/"]["post"]["responses"]
    assert "application/problem+json" in token["429"]["content"]
    assert "application/problem+json" in token["default"]["content"]
    for path, operations in paths.items():
        if path.startswith("/ofrep/"):
            for operation in operations.values():
                assert "default" not in operation["responses"]


def test_schema__documents_the_change_stream(client: Client) -> None:
    schema = client.get("/api/schema/", headers={"Accept": "application/json"}).json()
    operation = schema["paths"]["/api/v1/stream"]["get"]

    assert list(operation["responses"]["200"]["content"]) == ["text/event-stream"]
    assert operation["security"] == [{"apiKeyAuth": []}, {"clientKeyQuery": []}]
    assert schema["components"]["securitySchemes"]["clientKeyQuery"]["in"] == "query"
    limited = operation["responses"]["429"]
    assert "application/problem+json" in limited["content"]
    assert "Retry-After" in limited["headers"]
    assert {"400", "401", "403", "404", "default"} <= set(operation["responses"])


def test_docs__swagger_ui_from_sidecar_not_a_cdn(client: Client) -> None:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower()
    assert "/static/drf_spectacular_sidecar/" in page


@pytest.fixture
def api_schema(db: None) -> Iterator[Any]:
    """The schema, loaded from the WSGI application that schemathesis then calls."""
    from flagship.wsgi import application  # noqa: PLC0415  # the app, once Django is set up

    # As Django's test client does: a request must not close the test's connection (and with
    # it the transaction every test runs in).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def credentials(administrator: User) -> dict[str, dict[str, str]]:
    """An Administrator's JWT and a server key of an environment with a couple of flags."""
    project = project_services.project_create(key="shop", name="Shop", actor=administrator)
    flag_services.flag_create(project=project, key="new-checkout", name="New checkout")
    flag_services.flag_create(
        project=project,
        key="banner",
        name="Banner",
        kind="string",
        variants=[("a", "Hello"), ("b", "Hi")],
    )
    environment = project.environments.order_by("order").first()
    assert environment is not None
    _, server_key = account_services.api_key_issue(
        kind="server", name="schemathesis", environment=environment
    )
    access = str(RefreshToken.for_user(administrator).access_token)
    return {
        "person": {"Authorization": f"Bearer {access}"},
        "key": {"X-API-Key": server_key},
    }


def exercise(
    operation: Any, headers: dict[str, str], checks: list[Any], statuses: list[int]
) -> None:
    """A few generated requests against one operation, each answer checked."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=6,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        statuses.append(response.status_code)
        case.validate_response(response, checks=checks)

    run()


def test_api__conforms_to_its_schema(
    api_schema: Any, credentials: dict[str, dict[str, str]]
) -> None:
    # schemathesis' pytest integration (from_fixture) does not run under pytest 9, so each
    # operation gets its own small hypothesis run here, and every failure is reported at the end.
    failures: list[str] = []
    statuses: list[int] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 10
    for operation in operations:
        keyed = operation.path.startswith(KEYED_PREFIXES)
        headers = credentials["key" if keyed else "person"]
        checks = [not_a_server_error] if operation.path.startswith("/ofrep/") else API_CHECKS
        try:
            exercise(operation, headers, checks, statuses)
        except Exception as error:  # collect every operation's failure
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    assert not failures, "\n\n".join(failures)
    # The credentials work: some calls succeed (generated ids mostly answer 404 or 400).
    assert any(200 <= status < 300 for status in statuses), sorted(set(statuses))
    print(f"schemathesis: {len(statuses)} requests, statuses {sorted(set(statuses))}")  # noqa: T201
