"""The one JSON loader for client input: strict, nested no deeper than FLAGSHIP_MAX_JSON_DEPTH."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import User
from flags import conf
from flags.tests.api_clients import bearer
from flags.tests.evaluation_data import issue_admin
from flagship import jsonbody


def nested(depth: int) -> str:
    """Arrays nested ``depth`` levels deep: ``[[[]]]`` is 3."""
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [1, 2, 63, 64])
def test_loads__up_to_the_limit__parsed(depth: int) -> None:
    assert jsonbody.loads(nested(depth)) == json.loads(nested(depth))


@pytest.mark.parametrize("depth", [65, 500, 5_000, 100_000])
def test_loads__deeper_than_the_limit__too_deep_not_recursion_error(depth: int) -> None:
    # Python's parser raises RecursionError somewhere near 1 000; the limit holds either way
    with pytest.raises(jsonbody.JSONTooDeepError) as raised:
        jsonbody.loads(nested(depth).encode())
    assert raised.value.limit == 64
    assert raised.value.code == "json_too_deep"
    assert str(raised.value) == "objects and arrays nested deeper than 64 levels"


def test_loads__objects_count_like_arrays() -> None:
    document = '{"a": ' * 64 + "1" + "}" * 64
    assert jsonbody.nesting_exceeds(jsonbody.loads(document), 63) is True
    with pytest.raises(jsonbody.JSONTooDeepError):
        jsonbody.loads('{"a": [' + document + "]}")


def test_loads__brackets_inside_strings__not_nesting() -> None:
    text = json.dumps({"note": "[" * 1_000 + "{" * 1_000})
    assert jsonbody.loads(text) == {"note": "[" * 1_000 + "{" * 1_000}


def test_loads__wide_document_within_the_limit__parsed() -> None:
    value: Any = [{"a": [1, {"b": [[]] * 50}]} for _ in range(2_000)]
    assert jsonbody.loads(json.dumps(value)) == value


@pytest.mark.parametrize("text", ["NaN", '{"x": Infinity}', "[-Infinity]"])
def test_loads__nan_and_infinity__refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not valid JSON") as raised:
        jsonbody.loads(text)
    assert not isinstance(raised.value, jsonbody.JSONTooDeepError)


@pytest.mark.parametrize("raw", [b'"\xff\xfe\xfa"', b"{", b"", b"[1,]"])
def test_loads__not_json__value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  # JSONDecodeError or UnicodeDecodeError
        jsonbody.loads(raw)


def test_loads__utf16_bytes__parsed() -> None:
    assert jsonbody.loads('{"a": [1]}'.encode("utf-16")) == {"a": [1]}


def test_max_depth__setting_read_on_each_call() -> None:
    with override_settings(FLAGSHIP_MAX_JSON_DEPTH=3):
        assert conf.max_json_depth() == 3
        assert jsonbody.loads(nested(3)) == [[[]]]
        with pytest.raises(jsonbody.JSONTooDeepError, match="deeper than 3 levels"):
            jsonbody.loads(nested(4))
    assert conf.max_json_depth() == conf.DEFAULTS["FLAGSHIP_MAX_JSON_DEPTH"]


# --- Through DRF's parser (every management and evaluation route) -------------------------------


@pytest.fixture
def api(administrator: User) -> APIClient:
    return bearer(APIClient(), issue_admin(administrator))


def project_body(depth: int) -> str:
    """A project whose ``description`` nests ``depth`` levels deep in all (the body is level 1)."""
    return '{"key": "shop", "name": "Shop", "description": ' + nested(depth - 1) + "}"


def test_api__body_too_deep__400_json_too_deep(api: APIClient) -> None:
    response = api.post("/api/v1/projects/", project_body(65), content_type="application/json")

    assert response.status_code == 400
    problem = response.json()
    assert (problem["code"], problem["detail"], problem["type"]) == (
        "json_too_deep",
        "The JSON body nests objects and arrays deeper than 64 levels.",
        "https://flagship.dev/problems/json_too_deep",
    )
    assert response["Content-Type"] == "application/problem+json"


def test_api__body_at_the_limit__parsed_then_validated(api: APIClient) -> None:
    response = api.post("/api/v1/projects/", project_body(64), content_type="application/json")

    # The parser accepts it; the serializer refuses a description that is not text
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"][0]["field"] == "description"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"key": "shop", "name": NaN}', "JSON parse error - NaN is not valid JSON"),
        (b'{"key": "shop", "name": "\xff"}', "JSON parse error - 'utf-8' codec can't decode"),
        (b'{"key": ', "JSON parse error - Expecting value"),
    ],
)
def test_api__not_strict_json__400_malformed_json(api: APIClient, body: bytes, detail: str) -> None:
    response = api.post("/api/v1/projects/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert response.json()["detail"].startswith(detail)


def test_api__limit_from_settings(api: APIClient) -> None:
    with override_settings(FLAGSHIP_MAX_JSON_DEPTH=2):
        too_deep = api.post("/api/v1/projects/", project_body(3), content_type="application/json")
        flat = api.post(
            "/api/v1/projects/", '{"key": "shop", "name": "Shop"}', content_type="application/json"
        )

    assert too_deep.json()["detail"] == (
        "The JSON body nests objects and arrays deeper than 2 levels."
    )
    assert flat.status_code == 201
