"""The evaluation API: POST /api/v1/evaluate[/<key>] and GET /api/v1/ruleset."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import ApiKey, User
from accounts.services import api_key_issue, api_key_revoke
from flags import services
from flags.delivery import compiled, versions
from flags.models import Environment, Flag, Project

from .evaluation_data import VISIBLE, build_flags, issue, issue_admin, serve, state

EVALUATE = "/api/v1/evaluate"
RULESET = "/api/v1/ruleset"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    # SQLite may hand a rolled-back environment id to the next test: forget compiled rulesets.
    compiled.clear()
    versions.clear()


@pytest.fixture
def flags(project: Project, staging: Environment) -> dict[str, Flag]:
    return build_flags(project, staging)


@pytest.fixture
def server_key(staging: Environment) -> str:
    return issue(staging, ApiKey.Kind.SERVER)


@pytest.fixture
def client_key(staging: Environment) -> str:
    return issue(staging, ApiKey.Kind.CLIENT)


def post(client: Client, url: str, secret: str | None, body: Any = None, **extra: Any) -> Any:
    headers = {"X-API-Key": secret} if secret else {}
    data = json.dumps(body) if body is not None else ""
    return client.post(url, data=data, content_type="application/json", headers=headers | extra)


def test_evaluate_all_with_a_server_key(
    client: Client, flags: dict[str, Flag], server_key: str, staging: Environment
) -> None:
    response = post(
        client, EVALUATE, server_key, {"context": {"targetingKey": "u1", "country": "DE"}}
    )
    assert response.status_code == 200
    body = response.json()
    staging.refresh_from_db()
    assert body["version"] == staging.ruleset_version
    results = body["flags"]
    assert set(results) == set(flags)
    rule_id = str(state(flags["new-checkout"], staging).rules.get().pk)
    assert results["new-checkout"] == {
        "value": True,
        "variant": "on",
        "reason": "TARGETING_MATCH",
        "rule": rule_id,
    }
    assert results["banner-text"] == {
        "value": "Winter sale!",
        "variant": "sale",
        "reason": "STATIC",
    }
    assert results["legacy"] == {"value": False, "variant": "off", "reason": "DISABLED"}
    assert results["child"] == {
        "value": False,
        "variant": "off",
        "reason": "PREREQUISITE_FAILED",
        "prerequisite": "legacy",
    }
    assert results["theme"]["value"] == {"bg": "#000", "contrast": 1.5}


def test_numbers_stay_json_native(client: Client, flags: dict[str, Flag], server_key: str) -> None:
    response = post(client, EVALUATE, server_key)
    results = response.json()["flags"]
    assert isinstance(results["discount"]["value"], float)
    assert results["discount"]["value"] == 0.5
    assert type(results["max-items"]["value"]) is int
    assert b'"value":0.5' in response.content.replace(b" ", b"")


def test_client_keys_see_only_client_visible_flags(
    client: Client, flags: dict[str, Flag], client_key: str
) -> None:
    response = post(client, EVALUATE, client_key, {"context": {"country": "FR"}})
    assert response.status_code == 200
    assert set(response.json()["flags"]) == set(VISIBLE)
    assert response.json()["flags"]["new-checkout"]["reason"] == "DEFAULT"


@pytest.mark.parametrize("body", [None, {}, {"context": None}, {"context": {}}])
def test_a_missing_body_or_context_is_accepted(
    client: Client, flags: dict[str, Flag], server_key: str, body: Any
) -> None:
    response = post(client, EVALUATE, server_key, body)
    assert response.status_code == 200
    assert response.json()["flags"]["new-checkout"]["reason"] == "DEFAULT"


def test_a_body_without_content_type_is_accepted(
    client: Client, flags: dict[str, Flag], server_key: str
) -> None:
    response = client.generic("POST", EVALUATE, headers={"X-API-Key": server_key})
    assert response.status_code == 200


def test_malformed_json_is_400(client: Client, flags: dict[str, Flag], server_key: str) -> None:
    response = client.post(
        EVALUATE, data="{nope", content_type="application/json", headers={"X-API-Key": server_key}
    )
    assert response.status_code == 400


@pytest.mark.parametrize("body", [{"context": "user-1"}, {"context": [1, 2]}, [1]])
def test_a_context_that_is_not_an_object_is_400(
    client: Client, flags: dict[str, Flag], server_key: str, body: Any
) -> None:
    assert post(client, EVALUATE, server_key, body).status_code == 400


def test_evaluate_one_flag(
    client: Client, flags: dict[str, Flag], server_key: str, staging: Environment
) -> None:
    response = post(client, f"{EVALUATE}/banner-text", server_key, {"context": {"x": 1}})
    assert response.status_code == 200
    staging.refresh_from_db()
    assert response.json() == {
        "key": "banner-text",
        "value": "Winter sale!",
        "variant": "sale",
        "reason": "STATIC",
        "version": staging.ruleset_version,
    }


def test_evaluate_one_flag_with_bearer(
    client: Client, flags: dict[str, Flag], server_key: str
) -> None:
    response = client.post(
        f"{EVALUATE}/discount",
        data="{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {server_key}"},
    )
    assert response.status_code == 200
    assert response.json()["value"] == 0.5


def test_an_unknown_flag_is_404(client: Client, flags: dict[str, Flag], server_key: str) -> None:
    response = post(client, f"{EVALUATE}/no-such-flag", server_key)
    assert response.status_code == 404
    assert "flag_not_found" in response.content.decode()


def test_a_hidden_flag_is_404_for_client_keys_like_a_missing_one(
    client: Client, flags: dict[str, Flag], client_key: str
) -> None:
    hidden = post(client, f"{EVALUATE}/banner-text", client_key)
    missing = post(client, f"{EVALUATE}/no-such-flag", client_key)
    assert hidden.status_code == missing.status_code == 404
    assert (
        "banner-text" not in hidden.content.decode() or "no-such-flag" in missing.content.decode()
    )
    assert post(client, f"{EVALUATE}/discount", client_key).status_code == 200


def test_ruleset_with_etag_and_304(
    client: Client, flags: dict[str, Flag], server_key: str, staging: Environment
) -> None:
    response = client.get(RULESET, headers={"X-API-Key": server_key})
    assert response.status_code == 200
    staging.refresh_from_db()
    document = json.loads(response.content)
    assert document["version"] == staging.ruleset_version
    assert set(document["flags"]) == set(flags)
    assert document["flags"]["discount"]["variants"]["half"] == 0.5
    etag = response["ETag"]
    assert etag == f'"{staging.ruleset_version}"'

    again = client.get(RULESET, headers={"X-API-Key": server_key, "If-None-Match": etag})
    assert again.status_code == 304
    assert again["ETag"] == etag
    assert again.content == b""
    weak = client.get(RULESET, headers={"X-API-Key": server_key, "If-None-Match": f"W/{etag}"})
    assert weak.status_code == 304
    listed = client.get(RULESET, headers={"X-API-Key": server_key, "If-None-Match": f'"0", {etag}'})
    assert listed.status_code == 304

    serve(flags["banner-text"], staging, "none")
    changed = client.get(RULESET, headers={"X-API-Key": server_key, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert json.loads(changed.content)["flags"]["banner-text"]["default_serve"] == {
        "variant": "none"
    }


def test_ruleset_is_refused_to_client_keys(
    client: Client, flags: dict[str, Flag], client_key: str
) -> None:
    assert client.get(RULESET, headers={"X-API-Key": client_key}).status_code == 403


def test_a_change_is_evaluated_at_once(
    client: Client, flags: dict[str, Flag], server_key: str, staging: Environment
) -> None:
    assert post(client, f"{EVALUATE}/legacy", server_key).json()["reason"] == "DISABLED"
    serve(flags["legacy"], staging, "on")
    after = post(client, f"{EVALUATE}/legacy", server_key).json()
    assert (after["value"], after["reason"]) == (True, "STATIC")
    assert post(client, f"{EVALUATE}/child", server_key).json()["reason"] == "STATIC"


@pytest.mark.parametrize(
    ("method", "url"), [("post", EVALUATE), ("post", f"{EVALUATE}/discount"), ("get", RULESET)]
)
def test_admin_tokens_and_users_are_403(
    client: Client, flags: dict[str, Flag], administrator: User, method: str, url: str
) -> None:
    token = issue_admin(administrator)
    response = getattr(client, method)(url, headers={"X-API-Key": token})
    assert response.status_code == 403
    access = str(AccessToken.for_user(administrator))
    response = getattr(client, method)(url, headers={"Authorization": f"Bearer {access}"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("method", "url"), [("post", EVALUATE), ("post", f"{EVALUATE}/discount"), ("get", RULESET)]
)
def test_missing_invalid_and_revoked_keys_are_401(
    client: Client, flags: dict[str, Flag], staging: Environment, method: str, url: str
) -> None:
    assert getattr(client, method)(url).status_code == 401
    assert getattr(client, method)(url, headers={"X-API-Key": "fss_nope"}).status_code == 401
    key, secret = _issued(staging)
    api_key_revoke(key=key)
    assert getattr(client, method)(url, headers={"X-API-Key": secret}).status_code == 401


def _issued(environment: Environment) -> tuple[ApiKey, str]:
    return api_key_issue(kind=ApiKey.Kind.SERVER, name="to revoke", environment=environment)


@override_settings(FLAGSHIP_EVALUATION_RATE="2/h")
def test_rate_limited_per_key_with_integer_retry_after(
    client: Client, flags: dict[str, Flag], server_key: str, staging: Environment
) -> None:
    assert post(client, EVALUATE, server_key).status_code == 200
    assert post(client, f"{EVALUATE}/discount", server_key).status_code == 200
    limited = client.get(RULESET, headers={"X-API-Key": server_key})
    assert limited.status_code == 429
    retry_after = limited["Retry-After"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= 3600
    # Another key has its own budget.
    assert post(client, EVALUATE, issue(staging)).status_code == 200


def _add_flags(project: Project, environment: Environment, count: int, start: int) -> None:
    for index in range(start, start + count):
        flag = services.flag_create(project=project, key=f"flag-{index}", name=f"Flag {index}")
        serve(flag, environment, "on")
        services.rule_create(
            state=state(flag, environment),
            serve={"variant": "off"},
            conditions=[{"attribute": "country", "operator": "in", "values": ["FR"]}],
        )


def _queries_of_warm_evaluation(client: Client, secret: str) -> tuple[int, int]:
    post(client, EVALUATE, secret)  # warms the per-process cache (and records last use)
    with CaptureQueriesContext(connection) as captured:
        response = post(client, EVALUATE, secret, {"context": {"country": "FR"}})
    assert response.status_code == 200
    return len(captured), len(response.json()["flags"])


def test_warm_evaluation_queries_do_not_grow_with_flags(
    client: Client,
    project: Project,
    staging: Environment,
    server_key: str,
    django_assert_max_num_queries: Any,
) -> None:
    _add_flags(project, staging, 5, 0)
    few, counted = _queries_of_warm_evaluation(client, server_key)
    assert counted == 5
    _add_flags(project, staging, 45, 5)
    many, counted = _queries_of_warm_evaluation(client, server_key)
    assert counted == 50
    assert few == many
    post(client, EVALUATE, server_key)
    with django_assert_max_num_queries(1):  # the key lookup only
        post(client, EVALUATE, server_key, {"context": {"country": "FR"}})


def test_the_compiled_ruleset_is_reused(
    flags: dict[str, Flag], staging: Environment, django_assert_num_queries: Any
) -> None:
    staging.refresh_from_db()
    first = compiled.current_ruleset(staging)
    with django_assert_num_queries(0):
        assert compiled.current_ruleset(staging) is first
    serve(flags["legacy"], staging, "on")
    staging.refresh_from_db()
    assert compiled.current_ruleset(staging) is not first
    assert compiled.current_ruleset(staging).evaluate("legacy").value is True
