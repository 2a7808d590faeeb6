"""GraphQL reads: what REST shows, and a number of SQL queries that does not grow with the rows.

Each list query is asked of a project with a few flags and of one with ten times as many, every
flag carrying tags, an owner, rules with conditions and segments, and a prerequisite; the number
of queries must be the same (the optimizer's joins and prefetches, never one query per row).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD
from flags import services
from flags.models import Environment, Flag, FlagState, Project, Tag

from .api_clients import client_for
from .graphql_calls import dutch_users_rule, graphql

FLAGS = """
{ flags(project: "demo") { totalCount results {
    key name kind tags owner lifecycle archived project { key }
    variants { key value }
    states { environment { key name project { key } } enabled offVariant version defaultServe
      rules { id description rollout bucketBy serve segments
              conditions { attribute operator values negate caseInsensitive } }
      prerequisites { flag variants } } } } }
"""
SEGMENTS = """{ segments(project: "demo") { totalCount
    results { key name conditions { attribute operator values } } } }"""
PROJECTS = "{ projects { totalCount results { key name environments { key rulesetVersion } } } }"
AUDIT = """{ audit(project: "demo", pagination: {limit: 100}) { hasMore
    results { model type user changes { field } } } }"""


def populate(project: Project, count: int, owner: User) -> None:
    """``count`` flags, each with a tag, an owner, a segment rule and a prerequisite."""
    staging = project.environments.get(key="staging")
    tag = Tag.objects.filter(name="tag-demo").first() or services.tag_create(name="tag-demo")
    parent = services.flag_create(project=project, key="parent", name="Parent")
    for index in range(count):
        segment = services.segment_create(
            project=project,
            key=f"segment-{index}",
            name=f"Segment {index}",
            conditions=[{"attribute": "plan", "operator": "in", "values": ["pro"]}],
        )
        flag = services.flag_create(
            project=project, key=f"flag-{index:03}", name=f"Flag {index}", tags=[tag], owner=owner
        )
        state = FlagState.objects.get(flag=flag, environment=staging)
        services.rule_create(
            state=state,
            serve={"variant": "on"},
            conditions=[{"attribute": "country", "operator": "in", "values": ["NL", "BE"]}],
            segments=[segment],
            actor=None,
        )
        services.prerequisite_add(state=state, parent=parent, variants=["on"], actor=None)


def counted(client: APIClient, query: str) -> tuple[dict[str, Any], int]:
    """The data of ``query`` and the number of SQL queries it took."""
    with CaptureQueriesContext(connection) as queries:
        answer = graphql(client, query)
    assert "errors" not in answer.body, answer.body
    return answer.data, len(queries.captured_queries)


@pytest.fixture
def client(viewer: User) -> APIClient:
    """A Viewer's session."""
    client = APIClient()
    client.login(username=viewer.username, password=PASSWORD)
    return client


def test_list_queries__ten_times_the_rows__same_number_of_sql_queries(
    client: APIClient, viewer: User, django_assert_max_num_queries: Any
) -> None:
    # Given a project with 2 flags (and their targeting); each list read is counted
    queries = {"flags": FLAGS, "segments": SEGMENTS, "projects": PROJECTS}
    project = services.project_create(key="demo", name="Demo")
    populate(project, 2, viewer)
    small = {name: counted(client, query) for name, query in queries.items()}

    # When the project grows to 20 flags (and another project appears)
    Project.objects.all().delete()
    project = services.project_create(key="demo", name="Demo")
    services.project_create(key="other", name="Other")
    populate(project, 20, viewer)
    large = {}
    for name, query in queries.items():
        with django_assert_max_num_queries(30):
            large[name] = counted(client, query)

    # Then each read takes the same number of queries, and its answer grew
    assert {name: many for name, (_, many) in large.items()} == {
        name: few for name, (_, few) in small.items()
    }
    for name in queries:
        assert len(str(large[name][0])) > len(str(small[name][0])), name


def test_audit__ten_times_the_changes__no_more_sql_queries(
    client: APIClient, viewer: User, django_assert_max_num_queries: Any
) -> None:
    # Given a project whose history holds every kind of change (3 flags and their targeting)
    project = services.project_create(key="demo", name="Demo")
    populate(project, 3, viewer)
    _, few = counted(client, AUDIT)

    # When ten times as many changes follow
    for index in range(27):
        services.flag_create(project=project, key=f"more-{index}", name="More")
        services.segment_create(project=project, key=f"more-{index}", name="More")
    with django_assert_max_num_queries(30):
        data, many = counted(client, AUDIT)

    # Then a page of 100 takes no more queries (one per kind of history on the page, at most)
    assert len(data["audit"]["results"]) == 100
    assert data["audit"]["hasMore"] is True
    assert many <= few


def test_flags__fields_as_rest_shows_them(client: APIClient, viewer: User) -> None:
    # Given one flag with its targeting in staging
    project = services.project_create(key="demo", name="Demo")
    populate(project, 1, viewer)
    rest = client.get("/api/v1/projects/demo/flags/flag-000/environments/staging/").json()

    # When it is read through GraphQL
    data, _ = counted(client, FLAGS)

    # Then the state holds what REST's does (in camelCase), keys where REST gives keys
    [flag] = [f for f in data["flags"]["results"] if f["key"] == "flag-000"]
    [state] = [s for s in flag["states"] if s["environment"]["key"] == "staging"]
    [rule] = state["rules"]
    [rest_rule] = rest["rules"]
    assert (flag["tags"], flag["owner"], flag["project"]) == (
        ["tag-demo"],
        "viewer",
        {"key": "demo"},
    )
    assert state["enabled"] == rest["enabled"]
    assert state["offVariant"] == rest["off_variant"]
    assert state["version"] == rest["version"]
    assert state["defaultServe"] == rest["default_serve"]
    assert state["prerequisites"] == rest["prerequisites"]
    assert int(rule["id"]) == rest_rule["id"]
    assert rule["segments"] == rest_rule["segments"]
    assert rule["serve"] == rest_rule["serve"]
    assert [
        {
            "attribute": c["attribute"],
            "operator": c["operator"],
            "values": c["values"],
            "negate": c["negate"],
            "case_insensitive": c["caseInsensitive"],
        }
        for c in rule["conditions"]
    ] == rest_rule["conditions"]


def test_audit__same_changes_as_rest_feed(
    client: APIClient, editor: User, project: Project, staging: Environment
) -> None:
    # Given an Editor's change to a flag
    flag = services.flag_create(project=project, key="f", name="F", actor=editor)
    services.flag_toggle(state=flag.states.get(environment=staging), enabled=True, actor=editor)

    # When the audit feed of the flag is read through both APIs
    rest = client.get("/api/v1/audit/?project=demo&flag=f").json()["results"]
    data, _ = counted(
        client,
        '{ audit(project: "demo", flag: "f") { hasMore '
        "results { id date type user model objectId changes { field old new } } } }",
    )

    # Then they list the same changes, newest first
    assert data["audit"]["hasMore"] is False
    assert [
        (c["id"], c["type"], c["user"], c["model"], c["objectId"], c["changes"])
        for c in data["audit"]["results"]
    ] == [(c["id"], c["type"], c["user"], c["model"], c["object_id"], c["changes"]) for c in rest]
    assert data["audit"]["results"][0]["user"] == "editor"


def test_audit__unknown_filters__not_found_and_project_required(
    client: APIClient, project: Project
) -> None:
    # When the feed is filtered by an unknown project, or by an environment without its project
    unknown = graphql(client, '{ audit(project: "nope") { hasMore } }')
    bare = graphql(client, '{ audit(environment: "staging") { hasMore } }')

    # Then REST's codes and field errors come back
    rest = client.get("/api/v1/audit/?environment=staging").json()
    assert unknown.codes == ["not_found"]
    assert unknown.error["message"] == "No project nope."
    assert bare.codes == ["invalid"]
    assert bare.error["extensions"]["errors"] == rest["errors"]
    assert rest["errors"][0]["code"] == "project_required"


def test_flag__missing__null_and_unknown_project__not_found(
    client: APIClient, project: Project
) -> None:
    # When a missing flag of a known project, and a flag of an unknown project, are read
    missing = graphql(client, '{ flag(project: "demo", key: "nope") { key } }')
    unknown = graphql(client, '{ flag(project: "nope", key: "x") { key } }')

    # Then the first is null; the second names what does not exist
    assert missing.body == {"data": {"flag": None}}
    assert unknown.codes == ["not_found"]
    assert unknown.error["message"] == "There is no project 'nope'."


def test_evaluate__person__same_values_as_server_key(
    client: APIClient, project: Project, staging: Environment, boolean_flag: Flag
) -> None:
    # Given a flag on in staging for Dutch users
    dutch_users_rule(boolean_flag, staging, enabled=True)
    server = client_for("server_key", staging)
    query = (
        '{ evaluate(project: "demo", environment: "staging", '
        'context: {targetingKey: "u", country: "%s"}) '
        "{ version flags { key value variant reason rule } } }"
    )

    # When a Viewer and a server key evaluate for a Dutch and a German user
    answers = {
        (who, country): graphql(caller, query % country).data["evaluate"]
        for who, caller in (("viewer", client), ("server", server))
        for country in ("NL", "DE")
    }
    rest = server.post(
        "/api/v1/evaluate", {"context": {"targetingKey": "u", "country": "NL"}}, format="json"
    ).json()

    # Then both get the same, and what the evaluation API answers
    assert answers[("viewer", "NL")] == answers[("server", "NL")]
    assert answers[("viewer", "DE")] == answers[("server", "DE")]
    [dutch] = answers[("server", "NL")]["flags"]
    assert (dutch["value"], dutch["reason"], dutch["rule"]) == (
        True,
        rest["flags"]["new-checkout"]["reason"],
        rest["flags"]["new-checkout"]["rule"],
    )
    assert answers[("server", "NL")]["version"] == rest["version"]
    assert answers[("server", "DE")]["flags"][0]["reason"] == "DEFAULT"


def test_nul_in_a_key__invalid_as_rest_not_a_database_error(
    client: APIClient, project: Project
) -> None:
    # When a key argument holds NUL (PostgreSQL cannot compare it), inline and in a variable
    inline = graphql(client, '{ flags(project: "de\\u0000mo") { totalCount } }')
    variable = graphql(
        client,
        'query($keys: [String!]) { evaluate(project: "demo", environment: "staging", '
        "flags: $keys) { version } }",
        {"keys": ["ok", "bad\x00"]},
    )

    # Then each is refused as invalid input, naming the argument, before reaching the database
    assert inline.codes == variable.codes == ["invalid"]
    assert inline.error["extensions"]["errors"][0]["field"] == "project"
    assert variable.error["extensions"]["errors"][0]["field"] == "flags[1]"
