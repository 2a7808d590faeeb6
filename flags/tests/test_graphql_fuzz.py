"""schemathesis generates operations from ``/graphql``'s own introspection and sends them.

Every answer must be a GraphQL answer with codes: never a 5xx, never an ``internal_error``, every
error carrying one of the codes docs/graphql.md lists. Generated values mostly name nothing (404
``not_found``) or break a limit; a few succeed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from graphql import (
    BooleanValueNode,
    FloatValueNode,
    IntValueNode,
    ListValueNode,
    NameNode,
    NullValueNode,
    ObjectFieldNode,
    ObjectValueNode,
    StringValueNode,
    ValueNode,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from flags import services
from flags.models import Environment, Project

DOCUMENTED = set(
    re.findall(
        r"`([a-z_]+)`",
        (Path(django_settings.BASE_DIR) / "docs" / "graphql.md").read_text(encoding="utf-8"),
    )
)


def value_node(value: Any) -> ValueNode:
    """A JSON value as a GraphQL literal."""
    if isinstance(value, dict):
        fields = [
            ObjectFieldNode(name=NameNode(value=k), value=value_node(v)) for k, v in value.items()
        ]
        return ObjectValueNode(fields=tuple(fields))
    if isinstance(value, list):
        return ListValueNode(values=tuple(value_node(item) for item in value))
    if isinstance(value, bool):
        return BooleanValueNode(value=value)
    if isinstance(value, int):
        return IntValueNode(value=str(value))
    if isinstance(value, float):
        return FloatValueNode(value=repr(value))
    if value is None:
        return NullValueNode()
    return StringValueNode(value=str(value))


NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True) | st.sampled_from(
    ["variant", "targetingKey", "country", "split"]
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["on", "off", "NL"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(NAMES, children, max_size=3),
    max_leaves=6,
)
# The JSON scalar (contexts, serves, condition values), which schemathesis cannot generate itself.
schemathesis.graphql.scalar("JSON", JSON_VALUES.map(value_node))


@pytest.fixture
def person(administrator: User, project: Project, staging: Environment) -> dict[str, str]:
    """An Administrator's JWT, and a project with a flag and a segment to find."""
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    services.flag_toggle(state=flag.states.get(environment=staging), enabled=True, actor=None)
    services.segment_create(project=project, key="beta", name="Beta")
    return {"Authorization": f"Bearer {RefreshToken.for_user(administrator).access_token}"}


@pytest.fixture
def graphql_schema(person: dict[str, str]) -> Iterator[Any]:
    """The schema as introspected through the WSGI application that schemathesis then calls."""
    from flagship.wsgi import application  # noqa: PLC0415  # the app, once Django is set up

    # As Django's test client does: a request must not close the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.graphql.from_wsgi("/graphql", application, headers=person)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def exercise(operation: Any, headers: dict[str, str], answers: list[tuple[int, list[str]]]) -> None:
    """Generated operations against one root field, each answer checked."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=8,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        body = response.json()
        assert isinstance(body, dict), body
        assert set(body) <= {"data", "errors", "extensions"}, body
        codes = [error["extensions"]["code"] for error in body.get("errors", [])]
        assert response.status_code < 500, body
        assert "internal_error" not in codes, body
        assert set(codes) <= DOCUMENTED, (codes, body)
        answers.append((response.status_code, codes))

    run()


def test_generated_operations__answered_with_documented_codes(
    graphql_schema: Any, person: dict[str, str]
) -> None:
    # Given every root field of the schema (queries and mutations)
    operations = [result.ok() for result in graphql_schema.get_all_operations()]
    assert len(operations) >= 10

    # When schemathesis sends generated operations to each, as an Administrator
    failures: list[str] = []
    answers: list[tuple[int, list[str]]] = []
    for operation in operations:
        try:
            exercise(operation, person, answers)
        except Exception as error:  # collect every field's failure
            failures.append(f"{operation.label}: {error}")

    # Then none failed, and some succeeded outright
    assert not failures, "\n\n".join(failures)
    assert any(status == 200 and not codes for status, codes in answers), answers
    print(f"schemathesis: {len(answers)} operations")  # noqa: T201
