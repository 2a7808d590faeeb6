"""OFREP and evaluation edge paths: internal faults, oversized bodies, the cache and the limiter."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import Client
from django.test.utils import override_settings

from accounts.models import ApiKey
from flags.delivery import compiled, versions
from flags.documents import environment_ruleset
from flags.evaluation import throttling
from flags.models import Environment, Flag, Project
from flagship_sdk.engine import ErrorCode, Ruleset
from flagship_sdk.engine.results import error_result

from .evaluation_data import build_flags, issue

FLAGS = "/ofrep/v1/evaluate/flags"


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


def post(client: Client, url: str, secret: str, data: str = "{}") -> Any:
    return client.post(
        url, data=data, content_type="application/json", headers={"X-API-Key": secret}
    )


def test_an_internal_fault_is_500_general(
    client: Client, flags: dict[str, Flag], server_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(environment: Environment) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("flags.evaluation.views.compiled_ruleset", broken)
    single = post(client, f"{FLAGS}/discount", server_key)
    assert single.status_code == 500
    assert single.json() == {
        "key": "discount",
        "errorCode": "GENERAL",
        "errorDetails": "An internal error occurred.",
    }
    assert "boom" not in single.content.decode()
    bulk = post(client, FLAGS, server_key)
    assert bulk.status_code == 500
    assert bulk.json() == {"errorDetails": "An internal error occurred."}


@pytest.mark.parametrize(
    "case", [(Http404(), 404), (PermissionDenied(), 403), (PermissionError(), 500)]
)
def test_django_exceptions_keep_the_ofrep_shape(
    client: Client,
    flags: dict[str, Flag],
    server_key: str,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[Exception, int],
) -> None:
    raised, status = case

    def broken(environment: Environment) -> Any:
        raise raised

    monkeypatch.setattr("flags.evaluation.views.compiled_ruleset", broken)
    response = post(client, FLAGS, server_key)
    assert response.status_code == status
    assert isinstance(response.json()["errorDetails"], str)


def test_engine_errors(
    client: Client, flags: dict[str, Flag], server_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        Ruleset, "evaluate", lambda self, key, context=None: error_result(key, ErrorCode.GENERAL)
    )
    monkeypatch.setattr(
        Ruleset,
        "evaluate_all",
        lambda self, context=None, client_visible_only=False: {
            "discount": error_result("discount", ErrorCode.GENERAL)
        },
    )
    single = post(client, f"{FLAGS}/discount", server_key)
    assert single.status_code == 500
    assert single.json()["errorCode"] == "GENERAL"
    bulk = post(client, FLAGS, server_key)
    assert bulk.status_code == 200
    assert bulk.json()["flags"] == [
        {
            "key": "discount",
            "errorCode": "GENERAL",
            "errorDetails": "The flag could not be evaluated.",
        }
    ]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=20)
def test_an_oversized_body_is_413(client: Client, flags: dict[str, Flag], server_key: str) -> None:
    response = post(
        client, f"{FLAGS}/discount", server_key, '{"context": {"x": "' + "y" * 50 + '"}}'
    )
    assert response.status_code == 413
    assert isinstance(response.json()["errorDetails"], str)


def test_the_limiter_fails_open_when_the_cache_cannot_count(
    client: Client, flags: dict[str, Flag], server_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttling, "shared_count", lambda *args, **kwargs: None)
    with override_settings(FLAGSHIP_EVALUATION_RATE="1/h"):
        for _ in range(3):
            assert post(client, f"{FLAGS}/discount", server_key).status_code == 200


@override_settings(FLAGSHIP_EVALUATION_RATE="")
def test_an_empty_rate_turns_the_limit_off(
    client: Client, flags: dict[str, Flag], server_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttling, "shared_count", None)  # never consulted
    assert post(client, f"{FLAGS}/discount", server_key).status_code == 200


def test_the_throttle_ignores_requests_without_a_key() -> None:
    class Anonymous:
        auth = None

    assert throttling.EvaluationRateThrottle().allow_request(Anonymous(), None)  # type: ignore[arg-type]  # a stand-in request


def test_concurrent_misses_build_once(
    flags: dict[str, Flag], staging: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging.refresh_from_db()
    document = environment_ruleset(staging)
    builds: list[int] = []

    def slow_build(environment: Environment) -> dict[str, Any]:
        builds.append(environment.pk)
        time.sleep(0.05)
        return document

    monkeypatch.setattr(compiled, "environment_ruleset", slow_build)
    results: list[Ruleset] = []
    threads = [
        threading.Thread(target=lambda: results.append(compiled.current_ruleset(staging)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert len({id(ruleset) for ruleset in results}) == 1


def test_the_cache_keeps_only_the_latest_entries(
    flags: dict[str, Flag], staging: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiled, "MAX_ENTRIES", 1)
    staging.refresh_from_db()
    first = compiled.compiled_ruleset(staging)
    other = Environment.objects.get(project=staging.project, key="development")
    compiled.compiled_ruleset(other)
    assert compiled.compiled_ruleset(staging) is not first
