"""``/graphql`` driven by a GraphQL client we did not write (gql), over real HTTP.

gql fetches the schema by introspection (or reads ``docs/schema.graphql``) and validates every
operation against it before sending, then sends it as GraphQL clients do; these tests run it
against a live FlagShip (pytest-django's ``live_server``) with each kind of credential.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.requests import RequestsHTTPTransport

from accounts import services as account_services
from accounts.models import ApiKey, User
from flags import services
from flags.models import Environment, Flag, FlagState, Project

from .graphql_calls import dutch_users_rule

EVALUATE = """query Evaluate($environment: String!, $context: JSON) {
      evaluate(environment: $environment, context: $context) {
        version flags { key value variant reason } } }"""
TOGGLE = """mutation Toggle($flag: String!, $on: Boolean!, $version: Int) {
      toggleFlag(project: "demo", flag: $flag, environment: "staging", enabled: $on,
                 expectedVersion: $version) {
        state { enabled version } changeRequest { id } } }"""
FLAGS = """query Flags($page: OffsetPaginationInput) {
      flags(project: "demo", pagination: $page) { totalCount
        results { key states { environment { key } enabled version } } } }"""


def asking(document: str, **variables: Any) -> GraphQLRequest:
    """``document`` with its variables, as gql sends it."""
    return GraphQLRequest(document, variable_values=variables or None)


def superuser() -> User:
    """A superuser (live-server tests flush the role groups other fixtures use)."""
    return User.objects.create_superuser("root", "root@example.com", "x-not-used-x")


def client_at(url: str, headers: dict[str, str], *, from_docs: bool = False) -> Client:
    """A gql client of ``url``, validating against introspection or ``docs/schema.graphql``."""
    transport = RequestsHTTPTransport(url=url + "/graphql", headers=headers, timeout=10)
    if from_docs:
        schema = (Path(settings.BASE_DIR) / "docs" / "schema.graphql").read_text(encoding="utf-8")
        return Client(transport=transport, schema=schema)
    return Client(transport=transport, fetch_schema_from_transport=True)


@pytest.fixture
def flag(project: Project, staging: Environment) -> Flag:
    """``new-checkout``, on in staging for Dutch users."""
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    return dutch_users_rule(flag, staging, enabled=True)


def test_server_key__introspected_schema__evaluates(
    live_server: Any, staging: Environment, flag: Flag
) -> None:
    # Given gql with a server key, validating against the schema it introspected
    _, secret = account_services.api_key_issue(
        kind=ApiKey.Kind.SERVER, name="sdk", environment=staging
    )
    client = client_at(live_server.url, {"X-API-Key": secret})

    # When it evaluates for a Dutch and a German user
    with client as session:
        dutch = session.execute(
            asking(EVALUATE, environment="staging", context={"targetingKey": "u", "country": "NL"})
        )
        german = session.execute(
            asking(EVALUATE, environment="staging", context={"targetingKey": "u", "country": "DE"})
        )

    # Then each gets its value
    assert dutch["evaluate"]["flags"] == [
        {"key": "new-checkout", "value": True, "variant": "on", "reason": "TARGETING_MATCH"}
    ]
    assert german["evaluate"]["flags"] == [
        {"key": "new-checkout", "value": False, "variant": "off", "reason": "DEFAULT"}
    ]
    assert client.schema is not None
    assert client.schema.get_type("FlagState") is not None


def test_admin_token__checked_in_schema__toggles_and_pages(
    live_server: Any, staging: Environment, flag: Flag
) -> None:
    # Given gql with an admin token, validating against docs/schema.graphql
    _, secret = account_services.api_key_issue(kind=ApiKey.Kind.ADMIN, name="ci", user=superuser())
    client = client_at(live_server.url, {"Authorization": f"Bearer {secret}"}, from_docs=True)
    version = FlagState.objects.get(flag=flag, environment=staging).version

    # When it switches the flag off naming the version it read, then reads the flags
    with client as session:
        toggled = session.execute(asking(TOGGLE, flag="new-checkout", on=False, version=version))
        listed = session.execute(asking(FLAGS, page={"limit": 10}))

    # Then the switch is stored, and the list shows it
    assert toggled["toggleFlag"] == {
        "state": {"enabled": False, "version": version + 1},
        "changeRequest": None,
    }
    assert FlagState.objects.get(flag=flag, environment=staging).enabled is False
    [listed_flag] = listed["flags"]["results"]
    staging_state = next(s for s in listed_flag["states"] if s["environment"]["key"] == "staging")
    assert staging_state == {
        "environment": {"key": "staging"},
        "enabled": False,
        "version": version + 1,
    }


def test_stale_version__client_sees_code(
    live_server: Any, staging: Environment, flag: Flag
) -> None:
    # Given gql with an admin token
    _, secret = account_services.api_key_issue(kind=ApiKey.Kind.ADMIN, name="ci", user=superuser())
    client = client_at(live_server.url, {"X-API-Key": secret}, from_docs=True)

    # When it writes naming a version that is not the state's
    with client as session, pytest.raises(TransportQueryError) as refused:
        session.execute(asking(TOGGLE, flag="new-checkout", on=False, version=1))

    # Then the error the client raises carries the code
    assert refused.value.errors is not None
    assert refused.value.errors[0]["extensions"]["code"] == "stale_version"
    assert FlagState.objects.get(flag=flag, environment=staging).enabled is True


def test_client_key__cannot_read_rules__client_sees_permission_denied(
    live_server: Any, staging: Environment, flag: Flag
) -> None:
    # Given gql with a client key (browsers' key)
    _, secret = account_services.api_key_issue(
        kind=ApiKey.Kind.CLIENT, name="web", environment=staging
    )
    client = client_at(live_server.url, {"X-API-Key": secret}, from_docs=True)
    rules = asking(
        '{ flagState(project: "demo", flag: "new-checkout", environment: "staging") '
        "{ rules { conditions { values } } } }"
    )

    # When it asks for the rules
    with client as session, pytest.raises(TransportQueryError) as refused:
        session.execute(rules)

    # Then it is refused, and no rule reaches it
    assert refused.value.errors is not None
    assert refused.value.errors[0]["extensions"]["code"] == "permission_denied"
    assert refused.value.data == {"flagState": None}
    assert "NL" not in str(refused.value.errors)
