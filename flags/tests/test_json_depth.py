"""Bodies nested too deep: 400 on the evaluation API (fast path or not), OFREP and the admin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.test.utils import override_settings
from rest_framework.views import APIView

from accounts.models import User
from flags.admin.forms import EvaluateForm
from flags.admin.forms.base import LimitedJSONField
from flags.evaluation import fast
from flags.formats import parse_variant_value
from flags.models import Environment, Flag, Project

from .caching import caching
from .evaluation_data import build_flags, issue

LIMIT = 64


def deep_context(depth: int) -> str:
    """A body ``{"context": {"x": [[...]]}}`` nesting ``depth`` levels in all."""
    return '{"context": {"x": ' + "[" * (depth - 2) + "]" * (depth - 2) + "}}"


def nested(depth: int) -> str:
    """Arrays nested ``depth`` levels deep."""
    return "[" * depth + "]" * depth


@pytest.fixture(autouse=True)
def _caches_on() -> Iterator[None]:
    with caching():
        yield


@pytest.fixture
def secret(project: Project, staging: Environment) -> str:
    build_flags(project, staging)
    return issue(staging)


@pytest.fixture
def full_path_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request that reached DRF's dispatch (the full path)."""
    calls: list[str] = []
    original = APIView.dispatch

    def spy(self: APIView, request: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(request.path)
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(APIView, "dispatch", spy)
    return calls


def post(client: Client, url: str, secret: str, body: str) -> Any:
    return client.post(url, body, content_type="application/json", headers={"X-API-Key": secret})


# --- Evaluation API --------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/evaluate", "/api/v1/evaluate/new-checkout"])
@pytest.mark.parametrize("depth", [LIMIT + 1, 900, 5_000])
def test_evaluate__context_too_deep__fast_path_steps_aside_400_json_too_deep(
    client: Client, secret: str, full_path_calls: list[str], url: str, depth: int
) -> None:
    # Given a warm key (the fast path answers plain requests from memory)
    assert post(client, url, secret, deep_context(3)).status_code == 200
    full_path_calls.clear()

    # When the context nests deeper than the limit (65 does not trouble Python's parser)
    response = post(client, url, secret, deep_context(depth))

    # Then the full path answers it: 400 json_too_deep in problem details
    assert full_path_calls == [url]
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert (problem["code"], problem["detail"]) == (
        "json_too_deep",
        "The JSON body nests objects and arrays deeper than 64 levels.",
    )


@pytest.mark.parametrize("url", ["/api/v1/evaluate", "/api/v1/evaluate/new-checkout"])
def test_evaluate__context_at_the_limit__fast_and_full_paths_answer_the_same(
    client: Client,
    secret: str,
    full_path_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
) -> None:
    # Given a warm key
    post(client, url, secret, deep_context(3))
    full_path_calls.clear()

    # When a context exactly at the limit is evaluated by the fast path, then by the full one
    answered = post(client, url, secret, deep_context(LIMIT))
    assert full_path_calls == []
    with monkeypatch.context() as patched:
        patched.setattr(fast, "admitted", lambda *args: None)
        expected = post(client, url, secret, deep_context(LIMIT))
    assert full_path_calls == [url]

    # Then both are the same 200
    assert answered.status_code == expected.status_code == 200
    assert answered.content == expected.content


def test_evaluate__limit_from_settings__fast_path_follows_it(
    client: Client, secret: str, full_path_calls: list[str]
) -> None:
    post(client, "/api/v1/evaluate", secret, deep_context(3))
    full_path_calls.clear()
    with override_settings(FLAGSHIP_MAX_JSON_DEPTH=3):
        flat = post(client, "/api/v1/evaluate", secret, deep_context(3))
        deeper = post(client, "/api/v1/evaluate", secret, deep_context(4))

    assert flat.status_code == 200
    assert deeper.status_code == 400
    assert deeper.json()["code"] == "json_too_deep"
    assert full_path_calls == ["/api/v1/evaluate"]


# --- OFREP -----------------------------------------------------------------------------------

OFREP_TOO_DEEP = (
    "The request body is not valid JSON: objects and arrays nested deeper than 64 levels"
)


@pytest.mark.parametrize("depth", [LIMIT + 1, 5_000])
@pytest.mark.parametrize("slash", ["", "/"])
def test_ofrep_bulk__context_too_deep__400_parse_error(
    client: Client, secret: str, depth: int, slash: str
) -> None:
    post(client, "/ofrep/v1/evaluate/flags", secret, deep_context(3))  # warm

    response = post(client, "/ofrep/v1/evaluate/flags" + slash, secret, deep_context(depth))

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"errorCode": "PARSE_ERROR", "errorDetails": OFREP_TOO_DEEP}


@pytest.mark.parametrize("depth", [LIMIT + 1, 5_000])
def test_ofrep_flag__context_too_deep__400_parse_error_with_key(
    client: Client, secret: str, depth: int
) -> None:
    url = "/ofrep/v1/evaluate/flags/new-checkout"
    post(client, url, secret, deep_context(3))  # warm

    response = post(client, url, secret, deep_context(depth))

    assert response.status_code == 400
    assert response.json() == {
        "key": "new-checkout",
        "errorCode": "PARSE_ERROR",
        "errorDetails": OFREP_TOO_DEEP,
    }


def test_ofrep__context_at_the_limit__evaluated(client: Client, secret: str) -> None:
    response = post(client, "/ofrep/v1/evaluate/flags", secret, deep_context(LIMIT))
    assert response.status_code == 200
    assert {item["key"] for item in response.json()["flags"]} >= {"new-checkout"}


# --- The admin -------------------------------------------------------------------------------


def test_admin_evaluate__context_too_deep__form_error_not_500(
    client: Client, viewer: User, staging: Environment
) -> None:
    # Given someone on "Evaluate as"
    client.force_login(viewer)

    # When they paste a context nested 5 000 levels deep
    response = client.get(
        "/admin/flags/flag/evaluate/",
        {
            "environment": str(staging.pk),
            "context_json": '{"x": ' + nested(5_000) + "}",
            "attr-TOTAL_FORMS": "0",
            "attr-INITIAL_FORMS": "0",
        },
    )

    # Then the page answers with the error next to the field
    assert response.status_code == 200
    assert response.context["form"].errors["context_json"] == [
        "Enter valid JSON: objects and arrays nested deeper than 64 levels."
    ]
    assert response.context["results"] is None


def test_evaluate_form__nan__refused() -> None:
    form = EvaluateForm({"context_json": '{"x": NaN}'})
    form.is_valid()
    assert form.errors["context_json"] == ["Enter valid JSON: NaN is not valid JSON."]


def test_admin_flag_add__json_variant_too_deep__error_next_to_the_value(
    client: Client, editor: User, project: Project
) -> None:
    # Given an editor adding a JSON flag whose first value nests 5 000 levels deep
    client.force_login(editor)
    data = {
        "project": str(project.pk),
        "key": "deep",
        "name": "Deep",
        "kind": "json",
        "description": "",
        "lifecycle": "release",
        "salt": "",
        "variants-TOTAL_FORMS": "2",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
        "variants-0-key": "a",
        "variants-0-name": "",
        "variants-0-value": nested(5_000),
        "variants-1-key": "b",
        "variants-1-name": "",
        "variants-1-value": "[1]",
    }

    # When they save
    response = client.post("/admin/flags/flag/add/", data)

    # Then the form comes back with the error on that value, and nothing is created
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors
    assert errors[0] == {
        "value": ["Enter valid JSON: objects and arrays nested deeper than 64 levels."]
    }
    assert not Flag.objects.filter(key="deep").exists()


@pytest.mark.parametrize("text", [nested(LIMIT + 1), nested(5_000)])
def test_parse_variant_value__json_too_deep__validation_error(text: str) -> None:
    with pytest.raises(ValidationError, match="nested deeper than 64 levels"):
        parse_variant_value("json", text)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (nested(LIMIT + 1), "json_too_deep"),
        (nested(5_000), "json_too_deep"),
        ('{"a": NaN}', "invalid"),
        ("{", "invalid"),
    ],
)
def test_limited_json_field__not_acceptable__form_error(text: str, code: str) -> None:
    field = LimitedJSONField()
    with pytest.raises(ValidationError) as raised:
        field.clean(text)
    assert raised.value.code == code
    assert field.bound_data(text, None) == text  # shown back as typed


def test_limited_json_field__at_the_limit__value() -> None:
    assert LimitedJSONField().clean(nested(LIMIT)) == json.loads(nested(LIMIT))
