"""No input is a 500: every operation of the OpenAPI document, fed awkward bodies, both slash forms.

Each operation of the served document (and the change stream) is called with its path parameters
filled with real objects, with and without its trailing slash, with a valid-ish body (the
operation's example), malformed JSON, an empty body, a body nested 5 000 levels deep, NaN, bytes
that are not UTF-8 and a body over the size limit. Each call runs in a savepoint that is rolled
back, so both slash forms meet the same data. No answer may be a 5xx, and both forms must answer
the same status.
"""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services as account_services
from accounts.models import ApiKey, User
from flags import services
from flags.models import Flag

JSON = "application/json"
DEEP = 5_000
# Routes an environment key (not a person) calls.
KEYED_PREFIXES = (
    "/api/v1/evaluate",
    "/api/v1/ruleset",
    "/api/v1/sdk/",
    "/api/v1/stream",
    "/ofrep/",
)
# The stream is a plain async view: listed here in case the document does not show it.
STREAM = ("/api/v1/stream", "get")
# The awkward bodies (the valid-ish one is the operation's example, the oversized one is built).
BODIES: dict[str, bytes] = {
    "malformed": b'{"context": {"targetingKey": ',
    "empty": b"",
    "deep": b'{"context": {"x": ' + b"[" * DEEP + b"]" * DEEP + b"}}",
    "nan": b'{"context": {"x": NaN}}',
    "not_utf8": b'{"context": {"x": "\xff\xfe\xfa"}}',
}


@pytest.fixture
def world(administrator: User) -> dict[str, Any]:
    """Objects for every path parameter, an Administrator's JWT and a server key."""
    project = services.project_create(key="shop", name="Shop", actor=administrator)
    tag = services.tag_create(name="payments")
    services.flag_create(
        project=project, key="new-checkout", name="New checkout", tags=[tag], client_visible=True
    )
    services.flag_create(
        project=project,
        key="banner",
        name="Banner",
        kind=Flag.Kind.STRING,
        variants=[("a", "Hello"), ("b", "Hi")],
    )
    services.segment_create(
        project=project,
        key="beta",
        name="Beta",
        conditions=[{"attribute": "email", "operator": "str_ends_with", "values": ["@x.io"]}],
    )
    staging = project.environments.get(key="staging")
    key, server_key = account_services.api_key_issue(
        kind=ApiKey.Kind.SERVER, name="service", environment=staging
    )
    token, _ = account_services.api_key_issue(
        kind=ApiKey.Kind.ADMIN, name="automation", user=administrator
    )
    webhook, _ = services.webhook_create(
        project=project, name="Relay", url="http://127.0.0.1:9/hook", actor=administrator
    )
    delivery = services.webhook_send_test(webhook=webhook, actor=administrator)
    schedule = services.schedule_create(
        state=project.flags.get(key="new-checkout").states.get(environment=staging),
        steps=[services.StepSpec(at=timezone.now() + timedelta(days=30), action="enable")],
        actor=administrator,
    )
    production = services.environment_update(
        environment=project.environments.get(key="production"), actor=None, required_approvals=1
    )
    with services.proposing(environment=production, actor=administrator, title="On") as proposed:
        services.flag_toggle(
            state=project.flags.get(key="new-checkout").states.get(environment=production),
            enabled=True,
            actor=administrator,
        )
    assert proposed.change_request is not None
    access = str(RefreshToken.for_user(administrator).access_token)
    return {
        "params": {
            "project": "shop",
            "environment": "staging",
            "flag": "new-checkout",
            "variant": "on",
            "segment": "beta",
            "key": key.lookup,
            "token": token.lookup,
            "tag": "payments",
            "flag_key": "new-checkout",
            "webhook": str(webhook.pk),
            "delivery": str(delivery.pk),
            "schedule": str(schedule.pk),
            "change_request": str(proposed.change_request.pk),
        },
        "person": {"Authorization": f"Bearer {access}"},
        "key": {"X-API-Key": server_key},
    }


def operations(client: Client) -> list[tuple[str, str, dict[str, Any]]]:
    """``(path, method, operation)`` of every operation the served OpenAPI document lists."""
    document = client.get("/api/schema/", headers={"Accept": JSON}).json()
    found = [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    if STREAM not in [(path, method) for path, method, _ in found]:
        found.append((*STREAM, {}))
    return found


def fill(path: str, params: dict[str, str]) -> str:
    """The path with its parameters filled (``{key}`` is a flag key under OFREP)."""
    ofrep = path.startswith("/ofrep/")
    return re.sub(
        r"\{(\w+)\}",
        lambda match: "new-checkout" if ofrep else params[match.group(1)],
        path,
    )


def example_body(operation: dict[str, Any]) -> bytes:
    """The operation's first request example, else ``{}``: a body that is valid, or nearly."""
    content = operation.get("requestBody", {}).get("content", {}).get(JSON, {})
    for example in content.get("examples", {}).values():
        if "value" in example:
            return json.dumps(example["value"]).encode()
    return b"{}"


def toggled(url: str) -> str:
    """The URL with its trailing slash removed, or added."""
    return url[:-1] if url.endswith("/") else url + "/"


def status_of(client: Client, method: str, url: str, body: bytes, headers: dict[str, str]) -> int:
    """The status of one call, made in a savepoint that is rolled back."""
    with transaction.atomic():
        response = client.generic(method.upper(), url, body, content_type=JSON, headers=headers)
        transaction.set_rollback(True)
    return response.status_code


def test_every_operation__awkward_bodies_with_and_without_slash__no_5xx_same_status(
    client: Client, world: dict[str, Any]
) -> None:
    # Given every operation of the document, its parameters filled with real objects
    found = operations(client)
    assert len(found) > 40
    oversized = b'{"x": "' + b"a" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + b'"}'
    failures: list[str] = []
    valid_statuses: set[int] = set()
    calls = 0
    started = time.monotonic()

    for path, method, operation in found:
        url = fill(path, world["params"])
        headers = world["key" if path.startswith(KEYED_PREFIXES) else "person"]
        bodies = {"valid": example_body(operation), **BODIES, "oversized": oversized}
        for name, body in bodies.items():
            # When it is called with the body, with and without its trailing slash
            statuses = {
                form: status_of(client, method, form, body, headers) for form in (url, toggled(url))
            }
            calls += 2
            if name == "valid":
                valid_statuses.update(statuses.values())
            # Then neither answer is a 5xx, and both are the same
            label = f"{method.upper()} {url} ({name} body): {statuses}"
            if any(status >= 500 for status in statuses.values()):
                failures.append(f"5xx: {label}")
            elif len(set(statuses.values())) != 1:
                failures.append(f"slash forms differ: {label}")

    assert not failures, "\n".join(failures)
    # The credentials and objects work: valid-ish bodies mostly succeed
    assert {200, 201, 202, 204} <= valid_statuses, sorted(valid_statuses)
    print(f"{calls} calls in {time.monotonic() - started:.1f} s")  # noqa: T201


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/audit/"),
        ("get", "/api/v1/projects/shop/flags/"),
        ("post", "/api/v1/evaluate"),
        ("get", "/api/v1/ruleset"),
        ("get", "/api/v1/stream"),
    ],
)
def test_too_many_query_parameters__api__400_problem_not_500(
    client: Client, world: dict[str, Any], method: str, url: str
) -> None:
    # Given a query string of more parameters than DATA_UPLOAD_MAX_NUMBER_FIELDS
    query = "&".join(f"p{number}=1" for number in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    headers = world["key" if url.startswith(KEYED_PREFIXES) else "person"]

    # When a route is called with it
    response = client.generic(method.upper(), f"{url}?{query}", b"{}", JSON, headers=headers)

    # Then 400 too_many_parameters, in problem details
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_parameters"


def test_too_many_query_parameters__ofrep__400_in_ofrep_shape(
    client: Client, world: dict[str, Any]
) -> None:
    query = "&".join(f"p{number}=1" for number in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))

    response = client.post(f"/ofrep/v1/evaluate/flags?{query}", b"{}", JSON, headers=world["key"])

    assert response.status_code == 400
    assert response.json() == {
        "errorCode": "GENERAL",
        "errorDetails": "The query string has more than 1000 parameters.",
    }
