"""OFREP v1: POST /ofrep/v1/evaluate/flags/{key} and /ofrep/v1/evaluate/flags."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.test.utils import override_settings

from accounts.models import ApiKey, User
from accounts.services import api_key_issue, api_key_revoke
from flags.delivery import compiled, versions
from flags.models import Environment, Flag, Project

from .evaluation_data import VISIBLE, build_flags, issue, issue_admin, serve, state

FLAGS = "/ofrep/v1/evaluate/flags"
STANDARD_REASONS = {"STATIC", "DEFAULT", "TARGETING_MATCH", "SPLIT", "DISABLED"}


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
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


def post(
    client: Client,
    url: str,
    secret: str | None,
    body: Any = None,
    *,
    raw: str | None = None,
    **headers: str,
) -> Any:
    if secret:
        headers["X-API-Key"] = secret
    data = raw if raw is not None else (json.dumps(body) if body is not None else "")
    return client.post(url, data=data, content_type="application/json", headers=headers)


def assert_ofrep_error(response: Any, status: int, body: dict[str, Any]) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    payload = dict(response.json())
    assert isinstance(payload.pop("errorDetails"), str)
    assert payload == body


# --- single flag ---------------------------------------------------------------------------------


def test_targeting_match_with_rule_metadata(
    client: Client, flags: dict[str, Flag], server_key: str, staging: Environment
) -> None:
    response = post(
        client,
        f"{FLAGS}/new-checkout",
        server_key,
        {"context": {"targetingKey": "u", "country": "DE"}},
    )
    assert response.status_code == 200
    rule_id = str(state(flags["new-checkout"], staging).rules.get().pk)
    assert response.json() == {
        "key": "new-checkout",
        "value": True,
        "reason": "TARGETING_MATCH",
        "variant": "on",
        "metadata": {"rule": rule_id},
    }


@pytest.mark.parametrize(
    "expected",
    [
        ("new-checkout", False, "DEFAULT", "off"),
        ("banner-text", "Winter sale!", "STATIC", "sale"),
        ("discount", 0.5, "STATIC", "half"),
        ("max-items", 10, "STATIC", "ten"),
        ("theme", {"bg": "#000", "contrast": 1.5}, "STATIC", "dark"),
        ("legacy", False, "DISABLED", "off"),
    ],
)
def test_single_flag_results(
    client: Client, flags: dict[str, Flag], server_key: str, expected: tuple[str, Any, str, str]
) -> None:
    key, value, reason, variant = expected
    response = post(client, f"{FLAGS}/{key}", server_key, {"context": {"targetingKey": "u"}})
    assert response.status_code == 200
    body = response.json()
    assert body["key"] == key
    assert body["value"] == value
    assert type(body["value"]) is type(value)
    assert body["reason"] == reason
    assert body["variant"] == variant
    assert body["metadata"] == {}


def test_a_float_stays_a_float_on_the_wire(
    client: Client, flags: dict[str, Flag], server_key: str
) -> None:
    response = post(client, f"{FLAGS}/discount", server_key)
    assert b'"value":0.5' in response.content.replace(b" ", b"")
    assert b'"value":10' in post(client, f"{FLAGS}/max-items", server_key).content.replace(
        b" ", b""
    )


def test_prerequisite_failed_is_reported_as_default(
    client: Client, flags: dict[str, Flag], server_key: str
) -> None:
    response = post(client, f"{FLAGS}/child", server_key, {"context": {}})
    assert response.json() == {
        "key": "child",
        "value": False,
        "reason": "DEFAULT",
        "variant": "off",
        "metadata": {"prerequisite": "legacy"},
    }


@pytest.mark.parametrize("raw", ["", "{}", '{"context": null}', '{"context": {}}', "null"])
def test_a_missing_body_or_context_is_accepted(
    client: Client, flags: dict[str, Flag], server_key: str, raw: str
) -> None:
    response = post(client, f"{FLAGS}/banner-text", server_key, raw=raw)
    assert response.status_code == 200
    assert response.json()["value"] == "Winter sale!"


def test_any_content_type_carrying_json_is_read(
    client: Client, flags: dict[str, Flag], server_key: str
) -> None:
    response = client.post(
        f"{FLAGS}/new-checkout",
        data='{"context": {"country": "DE"}}',
        content_type="text/plain",
        headers={"X-API-Key": server_key},
    )
    assert response.json()["reason"] == "TARGETING_MATCH"
    bare = client.generic("POST", f"{FLAGS}/banner-text", headers={"X-API-Key": server_key})
    assert bare.status_code == 200


def test_bearer_authentication(client: Client, flags: dict[str, Flag], server_key: str) -> None:
    response = post(client, f"{FLAGS}/discount", None, Authorization=f"Bearer {server_key}")
    assert response.status_code == 200
    assert response.json()["value"] == 0.5


def test_flag_not_found(client: Client, flags: dict[str, Flag], server_key: str) -> None:
    assert_ofrep_error(
        post(client, f"{FLAGS}/no-such-flag", server_key),
        404,
        {"key": "no-such-flag", "errorCode": "FLAG_NOT_FOUND"},
    )


def test_client_keys_get_flag_not_found_for_hidden_flags(
    client: Client, flags: dict[str, Flag], client_key: str
) -> None:
    hidden = post(client, f"{FLAGS}/banner-text", client_key)
    missing = post(client, f"{FLAGS}/no-such-flag", client_key)
    assert_ofrep_error(hidden, 404, {"key": "banner-text", "errorCode": "FLAG_NOT_FOUND"})
    assert hidden.json()["errorDetails"].replace("banner-text", "K") == missing.json()[
        "errorDetails"
    ].replace("no-such-flag", "K")
    assert post(client, f"{FLAGS}/discount", client_key).json()["value"] == 0.5


@pytest.mark.parametrize("raw", ["{nope", '{"context": ', "[1, 2", '{"context": NaN}'])
def test_malformed_json_is_parse_error(
    client: Client, flags: dict[str, Flag], server_key: str, raw: str
) -> None:
    assert_ofrep_error(
        post(client, f"{FLAGS}/discount", server_key, raw=raw),
        400,
        {"key": "discount", "errorCode": "PARSE_ERROR"},
    )


def test_a_body_that_is_not_an_object_is_parse_error(
    client: Client, flags: dict[str, Flag], server_key: str
) -> None:
    assert_ofrep_error(
        post(client, f"{FLAGS}/discount", server_key, [1]),
        400,
        {"key": "discount", "errorCode": "PARSE_ERROR"},
    )


@pytest.mark.parametrize("context", ["user-1", [1], 3])
def test_a_context_that_is_not_an_object_is_invalid_context(
    client: Client, flags: dict[str, Flag], server_key: str, context: Any
) -> None:
    assert_ofrep_error(
        post(client, f"{FLAGS}/discount", server_key, {"context": context}),
        400,
        {"key": "discount", "errorCode": "INVALID_CONTEXT"},
    )


# --- authentication, authorization, rate limit ---------------------------------------------------


@pytest.mark.parametrize("url", [f"{FLAGS}/discount", FLAGS])
def test_missing_invalid_and_revoked_keys_are_401(
    client: Client, flags: dict[str, Flag], staging: Environment, url: str
) -> None:
    assert_ofrep_error(post(client, url, None), 401, {})
    assert_ofrep_error(post(client, url, "fss_not-a-key"), 401, {})
    assert_ofrep_error(post(client, url, None, Authorization="Bearer fsc_not-a-key"), 401, {})
    key, secret = api_key_issue(kind=ApiKey.Kind.CLIENT, name="old", environment=staging)
    api_key_revoke(key=key)
    assert_ofrep_error(post(client, url, secret), 401, {})


@pytest.mark.parametrize("url", [f"{FLAGS}/discount", FLAGS])
def test_admin_tokens_are_403(
    client: Client, flags: dict[str, Flag], administrator: User, url: str
) -> None:
    assert_ofrep_error(post(client, url, issue_admin(administrator)), 403, {})


@override_settings(FLAGSHIP_EVALUATION_RATE="1/h")
@pytest.mark.parametrize("url", [f"{FLAGS}/discount", FLAGS])
def test_rate_limit_is_429_with_integer_retry_after(
    client: Client, flags: dict[str, Flag], server_key: str, url: str
) -> None:
    assert post(client, url, server_key).status_code == 200
    limited = post(client, url, server_key)
    assert_ofrep_error(limited, 429, {})
    assert limited["Retry-After"].isdigit()
    assert 1 <= int(limited["Retry-After"]) <= 3600


# --- no trailing slash (one is accepted too), no redirect ----------------------------------------


def test_ofrep_paths__trailing_slash__same_answer_never_a_redirect(
    client: Client, flags: dict[str, Flag], server_key: str
) -> None:
    bulk, bulk_slash = post(client, FLAGS, server_key), post(client, f"{FLAGS}/", server_key)
    assert bulk.status_code == bulk_slash.status_code == 200
    assert bulk_slash.json() == bulk.json()
    one = post(client, f"{FLAGS}/discount", server_key)
    one_slash = post(client, f"{FLAGS}/discount/", server_key)
    assert one.status_code == one_slash.status_code == 200
    assert one_slash.json() == one.json() == {**one.json(), "key": "discount"}
    empty_key = post(client, f"{FLAGS}//", server_key)
    assert_ofrep_error(empty_key, 404, {"key": "", "errorCode": "FLAG_NOT_FOUND"})
    for url in (FLAGS, f"{FLAGS}/", f"{FLAGS}/discount", f"{FLAGS}/discount/"):
        assert post(client, url, server_key).status_code not in (301, 302, 307, 308)


@override_settings(APPEND_SLASH=True)
def test_no_redirect_even_with_append_slash(
    client: Client, flags: dict[str, Flag], server_key: str
) -> None:
    assert post(client, FLAGS, server_key).status_code == 200
    assert post(client, f"{FLAGS}/discount", server_key).status_code == 200


def test_other_methods_are_405_in_ofrep_shape(
    client: Client, flags: dict[str, Flag], server_key: str
) -> None:
    response = client.get(f"{FLAGS}/discount", headers={"X-API-Key": server_key})
    assert_ofrep_error(response, 405, {})
    assert "POST" in response["Allow"]


# --- bulk ----------------------------------------------------------------------------------------


def by_key(response: Any) -> dict[str, dict[str, Any]]:
    return {item["key"]: item for item in response.json()["flags"]}


def test_bulk_evaluation(client: Client, flags: dict[str, Flag], server_key: str) -> None:
    response = post(client, FLAGS, server_key, {"context": {"targetingKey": "u", "country": "DE"}})
    assert response.status_code == 200
    items = by_key(response)
    assert set(items) == set(flags)
    for item in items.values():
        assert set(item) == {"key", "value", "reason", "variant", "metadata"}
        assert item["reason"] in STANDARD_REASONS
        assert isinstance(item["variant"], str)
    assert items["new-checkout"]["value"] is True
    assert items["discount"]["value"] == 0.5
    assert isinstance(items["discount"]["value"], float)
    assert type(items["max-items"]["value"]) is int
    assert items["legacy"] == {
        "key": "legacy",
        "value": False,
        "reason": "DISABLED",
        "variant": "off",
        "metadata": {},
    }
    assert items["child"]["reason"] == "DEFAULT"
    assert items["child"]["metadata"] == {"prerequisite": "legacy"}


def test_bulk_for_client_keys_holds_visible_flags_only(
    client: Client, flags: dict[str, Flag], client_key: str
) -> None:
    assert set(by_key(post(client, FLAGS, client_key))) == set(VISIBLE)


def test_bulk_etag_and_304(
    client: Client, flags: dict[str, Flag], server_key: str, staging: Environment
) -> None:
    context = {"context": {"targetingKey": "u", "country": "DE"}}
    first = post(client, FLAGS, server_key, context)
    etag = first["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    same = post(client, FLAGS, server_key, context, **{"If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    assert same["ETag"] == etag
    # The same context written in another order is the same context.
    reordered = {"context": {"country": "DE", "targetingKey": "u"}}
    assert post(client, FLAGS, server_key, reordered, **{"If-None-Match": etag}).status_code == 304

    other_context = post(
        client, FLAGS, server_key, {"context": {"targetingKey": "v"}}, **{"If-None-Match": etag}
    )
    assert other_context.status_code == 200
    assert other_context["ETag"] != etag

    serve(flags["banner-text"], staging, "none")
    changed = post(client, FLAGS, server_key, context, **{"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert by_key(changed)["banner-text"]["value"] == ""


def test_bulk_etag_differs_between_server_and_client_keys(
    client: Client, flags: dict[str, Flag], server_key: str, client_key: str
) -> None:
    server = post(client, FLAGS, server_key)
    assert post(client, FLAGS, client_key, **{"If-None-Match": server["ETag"]}).status_code == 200


def test_bulk_errors(client: Client, flags: dict[str, Flag], server_key: str) -> None:
    assert_ofrep_error(post(client, FLAGS, server_key, raw="{"), 400, {"errorCode": "PARSE_ERROR"})
    assert_ofrep_error(
        post(client, FLAGS, server_key, {"context": "u"}), 400, {"errorCode": "INVALID_CONTEXT"}
    )


def test_bulk_with_no_flags(client: Client, project: Project, production: Environment) -> None:
    response = post(client, FLAGS, issue(production))
    assert response.status_code == 200
    assert response.json() == {"flags": []}
