"""``/graphql`` answers every caller as ``/api/v1/`` does: the same refusals, with the same codes.

For each kind of caller the same read, write and evaluation is asked of both APIs; the GraphQL
error's code and status must be the REST problem's (or both must succeed). Callers are built as
in the REST permission matrix: real credentials through the real authenticators.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from accounts.tests.factories import PASSWORD, make_user
from flags import services
from flags.models import Environment, Flag, FlagState, Project

from .api_clients import CALLERS, client_for
from .graphql_calls import Answer, dutch_users_rule, graphql

STATE = "/api/v1/projects/demo/flags/new-checkout/environments/staging/"
READ_RULES = """
{ flagState(project: "demo", flag: "new-checkout", environment: "staging") {
    enabled version rules { id conditions { attribute operator values } } } }
"""
TOGGLE = """
mutation { toggleFlag(project: "demo", flag: "new-checkout", environment: "staging", enabled: true)
  { state { enabled version } changeRequest { id } } }
"""
UPDATE = """
mutation { updateFlagState(project: "demo", flag: "new-checkout", environment: "staging",
  expectedVersion: 1, state: {enabled: true}) { state { enabled version } } }
"""
EVALUATE = """
{ evaluate(project: "demo", environment: "staging", context: {targetingKey: "u-1"}) {
    version flags { key value variant reason } } }
"""


def outcome_of_rest(response: Any) -> tuple[int, str | None]:
    """``(status, code)`` of a REST answer (``code`` ``None`` on success)."""
    if response.status_code < 400:
        return 200, None
    return response.status_code, response.json()["code"]


def outcome_of_graphql(answer: Answer) -> tuple[int, str | None]:
    """``(status, code)`` of a GraphQL answer: the HTTP refusal, the field's error, or success."""
    if answer.status != 200:
        return answer.status, answer.error["extensions"]["code"]
    if "errors" in answer.body:
        extensions = answer.error["extensions"]
        return extensions["status"], extensions["code"]
    return 200, None


@pytest.fixture
def flag(project: Project, staging: Environment) -> Flag:
    """``new-checkout`` with one rule in staging (what a client key must never read)."""
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    return dutch_users_rule(flag, staging, enabled=False)


@pytest.mark.parametrize("caller", CALLERS)
def test_read_rules__every_caller__same_outcome_as_rest(
    caller: str, flag: Flag, staging: Environment
) -> None:
    # Given a caller of each kind
    client = client_for(caller, staging)

    # When they read the state with its rules from both APIs
    rest = client.get(STATE)
    answer = graphql(client, READ_RULES)

    # Then both answer alike, and rules reach only those REST shows them to
    assert outcome_of_graphql(answer) == outcome_of_rest(rest)
    if rest.status_code == 200:
        assert answer.data["flagState"]["rules"][0]["conditions"] == [
            {"attribute": "country", "operator": "in", "values": ["NL"]}
        ]
    else:
        assert answer.data in (None, {"flagState": None})
        assert "NL" not in str(answer.body)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("operation", ["toggle", "update"])
def test_write__every_caller__same_outcome_as_rest_and_nothing_written_when_refused(
    caller: str, operation: str, flag: Flag, staging: Environment
) -> None:
    # Given a caller of each kind, and the REST call the mutation stands for
    client = client_for(caller, staging)
    query = TOGGLE if operation == "toggle" else UPDATE

    # When the mutation is sent first (a refused one must leave the state as it was)
    before = FlagState.objects.get(flag=flag, environment=staging).version
    answer = graphql(client, query.replace("expectedVersion: 1", f"expectedVersion: {before}"))
    after_graphql = FlagState.objects.get(flag=flag, environment=staging)
    services.flag_toggle(state=after_graphql, enabled=False, actor=None)  # back to off
    version = FlagState.objects.get(pk=after_graphql.pk).version
    if operation == "toggle":
        rest = client.post(STATE + "toggle/", {"enabled": True}, format="json")
    else:
        rest = client.patch(STATE, {"enabled": True}, format="json", HTTP_IF_MATCH=f'"{version}"')

    # Then both answer alike; a refused mutation wrote nothing
    assert outcome_of_graphql(answer) == outcome_of_rest(rest)
    if rest.status_code >= 400:
        assert (after_graphql.enabled, after_graphql.version) == (False, before)
    else:
        assert answer.data is not None


@pytest.mark.parametrize("caller", CALLERS)
def test_evaluate__every_caller__allowed_for_people_with_view_and_environment_keys(
    caller: str, flag: Flag, staging: Environment
) -> None:
    # Given a caller of each kind
    client = client_for(caller, staging)

    # When they evaluate in staging
    answer = graphql(client, EVALUATE)

    # Then people and environment keys get values (a client key only client-visible flags);
    # bad credentials get REST's 401
    expected: dict[str, tuple[int, str | None]] = {
        "anonymous": (401, "not_authenticated"),
        "revoked_key": (401, "revoked_api_key"),
        "expired_token": (401, "expired_api_key"),
    }
    assert outcome_of_graphql(answer) == expected.get(caller, (200, None))
    if caller == "client_key":  # new-checkout is not client-visible
        assert answer.data["evaluate"]["flags"] == []
    elif caller not in expected:
        [result] = answer.data["evaluate"]["flags"]
        assert (result["key"], result["variant"]) == ("new-checkout", "off")


def test_client_key__evaluate__client_visible_flags_only_hidden_like_missing(
    project: Project, staging: Environment
) -> None:
    # Given a client-visible flag and a server-only one
    services.flag_create(project=project, key="shown", name="Shown", client_visible=True)
    services.flag_create(project=project, key="hidden", name="Hidden", client_visible=False)
    client = client_for("client_key", staging)

    # When a client key evaluates everything, then names both flags and an unknown one
    everything = graphql(client, '{ evaluate(environment: "staging") { flags { key } } }')
    named = graphql(
        client,
        '{ evaluate(environment: "staging", flags: ["hidden", "shown", "nope"]) '
        "{ flags { key errorCode value } } }",
    )

    # Then only the visible flag is evaluated; the hidden one answers like the missing one
    assert [f["key"] for f in everything.data["evaluate"]["flags"]] == ["shown"]
    assert named.data["evaluate"]["flags"] == [
        {"key": "hidden", "errorCode": "FLAG_NOT_FOUND", "value": None},
        {"key": "shown", "errorCode": None, "value": False},
        {"key": "nope", "errorCode": "FLAG_NOT_FOUND", "value": None},
    ]


def test_environment_key__evaluate_another_environment__environment_mismatch(
    flag: Flag, staging: Environment
) -> None:
    # Given a server key of staging
    client = client_for("server_key", staging)

    # When it asks for production's values
    answer = graphql(client, '{ evaluate(environment: "production") { version } }')

    # Then it is refused: a key evaluates in its own environment only
    assert answer.codes == ["environment_mismatch"]
    assert answer.error["extensions"]["status"] == 403


def test_system_project__non_administrator__hidden_as_in_rest(
    flag: Flag, staging: Environment
) -> None:
    # Given FlagShip's own project (created by its migrations) and a Release manager
    client: APIClient = client_for("release_manager", staging)
    system = Project.objects.get(system=True)

    # When they list projects and ask for the system project by key on both APIs
    listed = graphql(client, "{ projects { results { key } } }")
    one = graphql(client, f'{{ project(key: "{system.key}") {{ key }} }}')
    rest = client.get(f"/api/v1/projects/{system.key}/")

    # Then neither API shows it to them
    assert system.key not in [p["key"] for p in listed.data["projects"]["results"]]
    assert one.data == {"project": None}
    assert rest.status_code == 404


def test_nested_states__role_without_view_flagstate__refused_where_asked(
    flag: Flag, staging: Environment
) -> None:
    # Given a person whose role may read flags but not their states
    person = make_user(username="flags-only")
    person.user_permissions.add(Permission.objects.get(codename="view_flag"))
    client = APIClient()
    client.login(username="flags-only", password=PASSWORD)

    # When they list flags, then flags with their states
    keys = graphql(client, '{ flags(project: "demo") { results { key } } }')
    states = graphql(client, '{ flags(project: "demo") { results { key states { enabled } } } }')

    # Then the keys come back; the states are refused at the field that asked for them
    assert keys.data == {"flags": {"results": [{"key": "new-checkout"}]}}
    assert states.codes == ["permission_denied"]
    assert states.error["path"] == ["flags", "results", 0, "states"]
