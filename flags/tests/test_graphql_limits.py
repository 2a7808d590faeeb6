"""Abusive GraphQL operations are refused before they run, with a clear error and a stable code.

Depth, aliases and cost are counted on the operation that would run, with every fragment
expanded where it is spread (CVE-2026-47707 was an alias limit that fragment spreads got past).
A refused operation reads nothing of FlagShip's data: the only queries are authentication's.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from graphql import get_introspection_query, parse
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD
from flags import services
from flags.graphql import limits
from flags.graphql.schema import schema
from flags.models import Environment, Project

from .graphql_calls import Answer, graphql

DEEP = """
{ projects { results { environments { project { environments { project {
    environments { project { key } } } } } } } } }
"""  # nine levels
DEEP_BY_FRAGMENTS = """
fragment Up on Environment { project { environments { project { key } } } }
fragment Down on Project { environments { ...Up } }
{ projects { results { environments { project { ...Down } } } } }
"""  # nine levels, five of them inside fragments
ALIASES_BY_FRAGMENTS = """
fragment Names on Project { a: key b: key c: key d: key e: key }
{ p1: project(key: "demo") { ...Names } p2: project(key: "demo") { ...Names }
  p3: project(key: "demo") { ...Names } p4: project(key: "demo") { ...Names } }
"""  # 9 aliases written, 24 executed
TARGETING = """results { key name tags variants { key value } states { environment { key }
    enabled offVariant version rules { rollout serve segments
    conditions { attribute operator values negate caseInsensitive } } } }"""
WIDE = f"""
query Wide($page: OffsetPaginationInput) {{
  mine: flags(project: "demo", pagination: $page) {{ {TARGETING} }}
  theirs: flags(project: "demo", pagination: $page, archived: true) {{ {TARGETING} }} }}
"""  # two pages of flags with all their targeting


@pytest.fixture
def client(viewer: User, project: Project) -> APIClient:
    """A Viewer's session (the project ``demo`` exists)."""
    client = APIClient()
    client.login(username=viewer.username, password=PASSWORD)
    return client


def asked(
    client: APIClient, query: str, variables: dict[str, Any] | None = None
) -> tuple[Answer, list[str]]:
    """The answer, and the SQL run while answering."""
    with CaptureQueriesContext(connection) as queries:
        answer = graphql(client, query, variables)
    return answer, [query["sql"] for query in queries.captured_queries]


def read_flagship_data(statements: list[str]) -> list[str]:
    """The statements that read FlagShip's own tables (not sessions, users or permissions)."""
    return [sql for sql in statements if '"flags_' in sql]


@pytest.mark.parametrize("query", [DEEP, DEEP_BY_FRAGMENTS], ids=["inline", "fragments"])
def test_deep_query__refused_before_reading_anything(client: APIClient, query: str) -> None:
    # When a Viewer sends a query nine levels deep (the limit is eight)
    answer, statements = asked(client, query)

    # Then it is refused whole, saying how deep it is and what the limit is; nothing was read
    assert answer.status == 200  # a GraphQL answer: the refusal is in errors
    assert answer.data is None
    assert answer.error["message"] == "The query nests fields 9 levels deep; the limit is 8."
    assert answer.error["extensions"] == {
        "code": "query_too_deep",
        "status": 400,
        "depth": 9,
        "limit": 8,
    }
    assert read_flagship_data(statements) == []


def test_deep_query__limit_raised_by_setting__runs(client: APIClient, settings: Any) -> None:
    # Given an operator who allows ten levels
    settings.FLAGSHIP_GRAPHQL_MAX_DEPTH = 10

    # When the nine-level query is sent
    answer, _ = asked(client, DEEP)

    # Then it runs
    assert "errors" not in answer.body, answer.body
    assert answer.data["projects"]["results"][0]["environments"][0]["project"]["environments"]


def test_aliases_in_spread_fragments__counted_where_spread__refused(client: APIClient) -> None:
    # When a query writes 9 aliases but, fragments spread, executes 24 (the limit is 20)
    answer, statements = asked(client, ALIASES_BY_FRAGMENTS)

    # Then it is refused, counting each spread
    assert answer.codes == ["too_many_aliases"]
    assert answer.error["extensions"]["aliases"] == 24
    assert read_flagship_data(statements) == []


def test_aliases_within_limit__runs(client: APIClient) -> None:
    # When the fragment is spread three times (3 aliased fields + 3 x 5 = 18 aliases)
    query = ALIASES_BY_FRAGMENTS.replace(' p4: project(key: "demo") { ...Names }', "")

    # Then it runs and answers every alias
    answer, _ = asked(client, query)
    assert "errors" not in answer.body, answer.body
    assert answer.data["p3"] == dict.fromkeys("abcde", "demo")


@pytest.mark.parametrize(("limit", "refused"), [(10, False), (100, True), (None, True)])
def test_cost__page_size_from_variables__large_pages_refused(
    client: APIClient, limit: int | None, refused: bool
) -> None:
    # When two lists of flags with all their targeting are asked for in pages of `limit`
    variables = {"page": None if limit is None else {"limit": limit}}
    answer, statements = asked(client, WIDE, variables)

    # Then 10 a page runs; 100 (and the default, 100) would cost too much and is refused
    if refused:
        assert answer.codes == ["query_too_complex"]
        assert answer.error["extensions"]["cost"] == 40_202
        assert "smaller pages" in answer.error["message"]
        assert read_flagship_data(statements) == []
    else:
        assert "errors" not in answer.body, answer.body


def test_too_many_tokens__refused_before_parsing(client: APIClient) -> None:
    # When a document of more than 2,000 tokens is sent
    query = "{ " + " ".join(["__typename"] * 2_500) + " }"
    answer, statements = asked(client, query)

    # Then it is refused as too large
    assert answer.codes == ["query_too_large"]
    assert answer.error["extensions"]["limit"] == 2_000
    assert read_flagship_data(statements) == []


def test_standard_introspection__answered(client: APIClient) -> None:
    # When a client (GraphiQL, codegen) sends the standard introspection query
    answer, _ = asked(client, get_introspection_query(descriptions=True))

    # Then it gets the schema
    assert "errors" not in answer.body, answer.body
    names = {kind["name"] for kind in answer.data["__schema"]["types"]}
    assert {"Flag", "FlagState", "Project", "Segment", "Evaluation"} <= names


def test_introspection_nested_past_its_limit__refused(client: APIClient) -> None:
    # When introspection follows ofType twenty times
    query = (
        "{ __schema { types { fields { type "
        + "{ ofType " * 20
        + "{ name }"
        + " }" * 20
        + " } } } }"
    )
    answer, _ = asked(client, query)

    # Then it is refused as too deep
    assert answer.codes == ["query_too_deep"]
    assert answer.error["extensions"]["limit"] == limits.INTROSPECTION_DEPTH


def test_fragment_bomb__measured_once_per_fragment__refused(client: APIClient) -> None:
    # Given 40 fragments, each spreading the next twice under an alias (2**40 fields if expanded)
    fragments = [
        f"fragment F{i} on Project {{ x{i}: key ...F{i + 1} ...F{i + 1} }}" for i in range(40)
    ]
    fragments.append("fragment F40 on Project { key }")
    query = "\n".join(fragments) + '\n{ project(key: "demo") { ...F0 } }'

    # When it is sent, it is measured without expanding it (or this test would not end)
    answer, statements = asked(client, query)

    # Then it is refused on the aliases it would execute
    assert answer.codes == ["too_many_aliases"]
    assert answer.error["extensions"]["aliases"] == 2**40 - 1
    assert read_flagship_data(statements) == []


def test_fragment_cycle__validation_error_not_a_crash(client: APIClient) -> None:
    # When fragments spread each other in a cycle
    query = """
    fragment A on Project { key ...B }
    fragment B on Project { name ...A }
    { project(key: "demo") { ...A } }
    """
    answer, _ = asked(client, query)

    # Then validation refuses it, with the code of invalid queries
    assert answer.codes == ["invalid_query"]
    assert "Cannot spread fragment" in answer.error["message"]


def test_measure__paginated_and_unpaginated_lists() -> None:
    # Given the schema and a page of 7 flags with their variants
    document = parse(
        '{ flags(project: "x", pagination: {limit: 7}) '
        "{ totalCount results { key variants { key value } } } }"
    )

    # When it is measured
    found = limits.measure(schema._schema, document, None, {})

    # Then the page multiplies by 7 and the variants (not paginated) by LIST_WIDTH
    width = limits.LIST_WIDTH
    results = 1 + 1 * (1 + (1 + width * 2))  # results list: one per page item, already counted
    assert found.cost == 1 + 7 * (1 + results)
    assert found.depth == 4
    assert found.aliases == 0


def test_measure__operation_name_picks_the_operation() -> None:
    # Given a document with a cheap and a deep operation
    document = parse("query Cheap { projects { totalCount } }\n" + "query Deep " + DEEP.strip())

    # When each is picked by name
    cheap = limits.measure(schema._schema, document, "Cheap", {})
    deep = limits.measure(schema._schema, document, "Deep", {})
    both = limits.measure(schema._schema, document, None, {})

    # Then each is measured alone; with no name, the worst counts
    assert (cheap.depth, deep.depth, both.depth) == (2, 9, 9)


def test_many_flags__listed_in_pages_within_budget(
    client: APIClient, project: Project, staging: Environment
) -> None:
    # Given 30 flags
    for index in range(30):
        services.flag_create(project=project, key=f"flag-{index:02}", name=f"Flag {index}")

    # When a dashboard asks for pages of 20 with their states in every environment
    query = """query Page($page: OffsetPaginationInput) {
      flags(project: "demo", pagination: $page) { totalCount pageInfo { offset limit }
        results { key states { environment { key } enabled version } } } }"""
    first, _ = asked(client, query, {"page": {"limit": 20}})
    second, _ = asked(client, query, {"page": {"offset": 20, "limit": 20}})

    # Then it pages through them all
    keys = [f["key"] for page in (first, second) for f in page.data["flags"]["results"]]
    assert keys == [f"flag-{index:02}" for index in range(30)]
    assert first.data["flags"]["totalCount"] == 30
    assert len(first.data["flags"]["results"][0]["states"]) == 3
