"""Test helpers for ``/graphql``: send an operation as a client does, read what came back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rest_framework.test import APIClient

from flags import services
from flags.models import Environment, Flag

GRAPHQL = "/graphql"


@dataclass(frozen=True)
class Answer:
    """What ``/graphql`` answered: the HTTP status and the decoded body."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def data(self) -> Any:
        """The ``data`` member (``None`` when absent)."""
        return self.body.get("data")

    @property
    def codes(self) -> list[str]:
        """The ``extensions.code`` of each error, in order."""
        return [error["extensions"]["code"] for error in self.body.get("errors", [])]

    @property
    def error(self) -> dict[str, Any]:
        """The one error (fails when there is not exactly one)."""
        errors = self.body.get("errors", [])
        assert len(errors) == 1, self.body
        error: dict[str, Any] = errors[0]
        return error


def dutch_users_rule(flag: Flag, environment: Environment, *, enabled: bool) -> Flag:
    """``flag`` (switched on when ``enabled``) with one rule serving ``on`` to Dutch users."""
    state = flag.states.get(environment=environment)
    if enabled:
        services.flag_toggle(state=state, enabled=True, actor=None)
    services.rule_create(
        state=state,
        serve={"variant": "on"},
        conditions=[{"attribute": "country", "operator": "in", "values": ["NL"]}],
        actor=None,
    )
    return flag


def graphql(client: APIClient, query: str, variables: dict[str, Any] | None = None) -> Answer:
    """POST ``query`` (with ``variables``) as JSON, as GraphQL clients send it."""
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    response = client.post(GRAPHQL, body, format="json")
    assert response["Content-Type"].startswith("application/json"), response.content
    return Answer(response.status_code, response.json(), dict(response.headers))
