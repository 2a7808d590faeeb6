"""``/graphql`` over HTTP: credentials, CSRF, rate limits, malformed requests, and GraphiQL.

What REST refuses before a view runs is refused here with the same status and code, in a body
GraphQL clients read (``errors[].extensions.code``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import User
from accounts.tests.factories import PASSWORD
from flags.graphql import limits
from flags.models import Environment, Project

from .api_clients import client_for
from .graphql_calls import GRAPHQL, Answer, graphql

PROJECTS = "{ projects { results { key } } }"


def answered(response: Any) -> Answer:
    """A raw response as an :class:`Answer` (it must be JSON)."""
    assert response["Content-Type"].startswith("application/json"), response.content
    return Answer(response.status_code, response.json(), dict(response.headers))


@pytest.fixture
def signed_in(viewer: User, project: Project) -> APIClient:
    """A Viewer's session (the project ``demo`` exists)."""
    client = APIClient()
    client.login(username=viewer.username, password=PASSWORD)
    return client


def test_jwt__access_token__reads_as_its_person(viewer: User, project: Project) -> None:
    # Given an access token obtained from the REST API
    client = APIClient()
    token = client.post(
        "/api/v1/auth/token/", {"username": "viewer", "password": PASSWORD}, format="json"
    ).json()["access"]

    # When it is sent as a bearer token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    answer = graphql(client, PROJECTS)

    # Then the Viewer's projects come back
    assert answer.status == 200
    assert [p["key"] for p in answer.data["projects"]["results"]] == ["demo"]


def test_jwt__garbage_token__401_as_rest(project: Project) -> None:
    # When a bearer token that is no token is sent to both APIs
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
    answer = graphql(client, PROJECTS)
    rest = client.get("/api/v1/projects/")

    # Then both answer 401 with the same code, asking for a bearer credential
    assert answer.status == rest.status_code == 401
    assert answer.codes == [rest.json()["code"]]
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="flagship"'


def test_admin_token__reads_and_writes_as_its_owner(administrator: User, project: Project) -> None:
    # Given an admin token of an Administrator
    _, secret = account_services.api_key_issue(kind="admin", name="ci", user=administrator)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=secret)

    # When it reads
    answer = graphql(client, PROJECTS)

    # Then it sees what its owner sees
    assert [p["key"] for p in answer.data["projects"]["results"]] == ["demo", "flagship"]


def test_session__without_csrf_token__403_and_with_it__answered(
    viewer: User, project: Project
) -> None:
    # Given a browser session (the admin's), with CSRF checks as a browser gets them
    client = Client(enforce_csrf_checks=True)
    client.login(username=viewer.username, password=PASSWORD)
    body = json.dumps({"query": PROJECTS})

    # When it posts without the CSRF token, then with it
    refused = answered(client.post(GRAPHQL, body, content_type="application/json"))
    client.get("/admin/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    accepted = answered(
        client.post(GRAPHQL, body, content_type="application/json", headers={"X-CSRFToken": token})
    )

    # Then the first is REST's 403, the second is answered
    assert (refused.status, refused.codes) == (403, ["permission_denied"])
    assert "CSRF" in refused.error["message"]
    assert accepted.data == {"projects": {"results": [{"key": "demo"}]}}


def test_rate_limit__per_person__429_with_retry_after(signed_in: APIClient, settings: Any) -> None:
    # Given a limit of two management calls a minute per person (counters of earlier runs gone)
    settings.FLAGSHIP_MANAGEMENT_RATE = "2/m"
    cache.clear()

    # When a Viewer sends three operations
    answers = [graphql(signed_in, PROJECTS) for _ in range(3)]

    # Then the third is refused with REST's code and a Retry-After
    assert [a.status for a in answers] == [200, 200, 429]
    assert answers[2].codes == ["rate_limited"]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60


def test_rate_limit__environment_key__its_evaluation_limit(
    project: Project, staging: Environment, settings: Any
) -> None:
    # Given an evaluation limit of one call a minute per server key
    settings.FLAGSHIP_SERVER_KEY_RATE = "1/m"
    client = client_for("server_key", staging)
    query = '{ evaluate(environment: "staging") { version } }'

    # When the key evaluates twice
    answers = [graphql(client, query) for _ in range(2)]

    # Then the second is refused
    assert [a.status for a in answers] == [200, 429]
    assert answers[1].codes == ["rate_limited"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "malformed_json"),
        ("[" * 100 + "]" * 100, "application/json", 400, "json_too_deep"),
        (json.dumps({"query": PROJECTS}), "text/plain", 415, "unsupported_media_type"),
        (
            json.dumps([{"query": PROJECTS}, {"query": PROJECTS}]),
            "application/json",
            400,
            "bad_request",
        ),
        (json.dumps({"variables": {}}), "application/json", 400, "bad_request"),
        (json.dumps({"query": PROJECTS, "variables": [1]}), "application/json", 400, "bad_request"),
    ],
    ids=["malformed", "too-deep", "content-type", "batch", "no-query", "variables-not-object"],
)
def test_malformed_request__refused_with_code(
    signed_in: APIClient, body: str, content_type: str, status: int, code: str
) -> None:
    # When a request that is not one GraphQL operation in JSON is sent
    answer = answered(signed_in.generic("POST", GRAPHQL, body, content_type))

    # Then it is refused with a status and a code, as a GraphQL error body
    assert (answer.status, answer.codes) == (status, [code])


def test_syntax_error__located_invalid_query(signed_in: APIClient) -> None:
    # When an operation does not parse
    answer = graphql(signed_in, "{ projects { ")

    # Then it says where, with the code of invalid queries
    assert answer.codes == ["invalid_query"]
    assert answer.error["locations"] == [{"line": 1, "column": 14}]


def test_unknown_field__no_suggestions(signed_in: APIClient) -> None:
    # When a field that does not exist is asked for
    answer = graphql(signed_in, "{ projectz { key } }")

    # Then it is refused without listing fields the caller did not ask about
    assert answer.codes == ["invalid_query"]
    assert "Did you mean" not in answer.error["message"]


def test_get__queries_run_mutations_refused(signed_in: APIClient) -> None:
    # When a query and a mutation are sent as GET
    query = answered(signed_in.get(GRAPHQL, {"query": PROJECTS}))
    mutation = answered(
        signed_in.get(
            GRAPHQL,
            {
                "query": 'mutation { toggleFlag(project: "demo", flag: "x", '
                'environment: "staging", enabled: true) { state { enabled } } }'
            },
        )
    )

    # Then the query runs and the mutation is refused (GET must not change anything)
    assert query.data == {"projects": {"results": [{"key": "demo"}]}}
    assert (mutation.status, mutation.codes) == (400, ["bad_request"])
    assert mutation.error["message"] == "mutations are not allowed when using GET"


def test_put__405_method_not_allowed(signed_in: APIClient) -> None:
    # When an operation is sent with PUT
    answer = answered(signed_in.put(GRAPHQL, {"query": PROJECTS}, format="json"))

    # Then only GET and POST are served
    assert (answer.status, answer.codes) == (405, ["method_not_allowed"])


def test_graphiql__development__served_to_browsers(signed_in: APIClient, settings: Any) -> None:
    # Given development, where GraphiQL is on
    settings.FLAGSHIP_GRAPHIQL = True

    # When a browser opens /graphql
    response = signed_in.get(GRAPHQL, HTTP_ACCEPT="text/html")

    # Then it gets GraphiQL
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"graphiql" in response.content.lower()


def test_graphiql__off__404_json_and_no_page(signed_in: APIClient, settings: Any) -> None:
    # Given an installation where GraphiQL is off (production, the test settings)
    settings.FLAGSHIP_GRAPHIQL = False

    # When a browser opens /graphql
    response = signed_in.get(GRAPHQL, HTTP_ACCEPT="text/html")

    # Then there is no IDE
    assert response.status_code == 404
    assert b"graphiql" not in response.content.lower()


def test_body_too_large__413(signed_in: APIClient, settings: Any) -> None:
    # Given a body limit of 1 KB
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    # When a larger operation is posted
    answer = graphql(signed_in, "{ projects { results { key } } } # " + "x" * 2048)

    # Then it is refused as too large, unread
    assert (answer.status, answer.codes) == (413, ["payload_too_large"])


def test_bug_in_an_extension__internal_error_without_detail(
    signed_in: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bug in the limits' measure (an extension's hook, outside any resolver)
    def broken(*_: object) -> None:
        raise RuntimeError("secret detail of the bug")

    monkeypatch.setattr(limits, "measure", broken)

    # When an operation is sent
    answer = graphql(signed_in, PROJECTS)

    # Then it is a coded internal error, and the detail stays in the log
    assert answer.codes == ["internal_error"]
    assert "secret detail" not in json.dumps(answer.body)
