"""The evaluation fast path answers exactly what the full DRF path answers, else steps aside."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.test.utils import override_settings
from pytest_django import DjangoCaptureOnCommitCallbacks
from rest_framework.views import APIView

from accounts.models import ApiKey
from accounts.services import api_key_revoke
from flags.delivery import keys, pubsub, versions
from flags.evaluation import counting, fast
from flags.models import Environment, Flag, Project

from .caching import caching, redis_url
from .evaluation_data import build_flags, issue, serve

CONTEXT = {"context": {"targetingKey": "user-7", "country": "DE", "note": "line\u2028break"}}
# (method, url, body): every endpoint the fast path answers, plus the shapes it answers them in.
REQUESTS: list[tuple[str, str, Any]] = [
    ("post", "/api/v1/evaluate", CONTEXT),
    ("post", "/api/v1/evaluate", None),
    ("post", "/api/v1/evaluate/new-checkout", CONTEXT),
    ("post", "/api/v1/evaluate/theme", {}),
    ("post", "/ofrep/v1/evaluate/flags", CONTEXT),
    ("post", "/ofrep/v1/evaluate/flags/new-checkout", CONTEXT),
    ("post", "/ofrep/v1/evaluate/flags/discount", None),
    ("get", "/api/v1/ruleset", None),
]
# Every request names its request id, so both paths answer the same X-Request-ID: every header
# is compared.
REQUEST_ID = "fast-path-test"
# Both paths answer Server-Timing (flagship.access); only its durations may differ.
TIMED_HEADERS = {"Server-Timing"}
_DURATION = re.compile(r"dur=[0-9.]+")


@pytest.fixture(autouse=True)
def _caches_on() -> Iterator[None]:
    with caching():
        yield


@pytest.fixture
def flags(project: Project, staging: Environment) -> dict[str, Flag]:
    return build_flags(project, staging)


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


def send(client: Client, method: str, url: str, secret: str, body: Any, **headers: str) -> Any:
    headers = {"X-Request-ID": REQUEST_ID, **headers}
    if method == "get":
        return client.get(url, headers={"X-API-Key": secret, **headers})
    data = "" if body is None else json.dumps(body)
    return client.post(
        url, data=data, content_type="application/json", headers={"X-API-Key": secret, **headers}
    )


def snapshot(response: Any) -> tuple[int, bytes, dict[str, str]]:
    headers = {
        k: _DURATION.sub("dur=N", v) if k in TIMED_HEADERS else v
        for k, v in response.headers.items()
    }
    return response.status_code, response.content, headers


@pytest.mark.parametrize("kind", [ApiKey.Kind.SERVER, ApiKey.Kind.CLIENT])
@pytest.mark.parametrize(("method", "url", "body"), REQUESTS)
def test_fast_and_full_paths_answer_byte_for_byte_the_same(
    client: Client,
    *,
    flags: dict[str, Flag],
    staging: Environment,
    full_path_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    method: str,
    url: str,
    body: Any,
) -> None:
    secret = issue(staging, kind)
    warm = send(client, method, url, secret, body)  # cold: the full path fills the caches
    full_path_calls.clear()
    answered = snapshot(send(client, method, url, secret, body))
    if warm.status_code != 200:  # client keys: the ruleset and hidden flags are refused
        assert kind == ApiKey.Kind.CLIENT
        assert full_path_calls == [url]  # errors are always the full path's
        return
    assert full_path_calls == []  # answered by the fast path

    with monkeypatch.context() as patched:
        patched.setattr(fast, "admitted", lambda *args: None)
        expected = snapshot(send(client, method, url, secret, body))
    assert full_path_calls == [url]
    assert answered == expected
    assert answered[2]["Server-Timing"] == "app;dur=N, db;dur=N"
    assert answered[2]["X-Request-ID"] == REQUEST_ID


@pytest.mark.parametrize(("method", "url", "body"), REQUESTS)
def test_fast_and_full_paths_count_each_evaluation_once(
    client: Client,
    *,
    flags: dict[str, Flag],
    staging: Environment,
    full_path_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    url: str,
    body: Any,
) -> None:
    # Given a server key, and the request sent once cold (the full path)
    secret = issue(staging, ApiKey.Kind.SERVER)
    send(client, method, url, secret, body)
    cold = counting.pending()
    # When it is sent on the fast path, then forced onto the full path
    full_path_calls.clear()
    send(client, method, url, secret, body)
    fast_counts = counting.pending()
    assert full_path_calls == []
    with monkeypatch.context() as patched:
        patched.setattr(fast, "admitted", lambda *args: None)
        send(client, method, url, secret, body)
    assert full_path_calls == [url]
    full_counts = counting.pending()
    # Then each path counted the same evaluations once (a ruleset download counts none)
    assert {key: fast_counts[key] - cold.get(key, 0) for key in fast_counts} == {
        key: full_counts[key] - fast_counts[key] for key in full_counts
    }
    assert bool(cold) == (method == "post")
    assert all(count == 1 for count in cold.values())


@pytest.mark.parametrize(
    ("url", "etag_of"),
    [
        ("/api/v1/ruleset", lambda response: response["ETag"]),
        ("/ofrep/v1/evaluate/flags", lambda response: response["ETag"]),
    ],
)
def test_not_modified_on_the_fast_path(
    client: Client,
    *,
    flags: dict[str, Flag],
    staging: Environment,
    full_path_calls: list[str],
    url: str,
    etag_of: Any,
) -> None:
    secret = issue(staging)
    method = "get" if url.endswith("ruleset") else "post"
    first = send(client, method, url, secret, CONTEXT)
    full_path_calls.clear()
    again = send(client, method, url, secret, CONTEXT, **{"If-None-Match": etag_of(first)})
    assert again.status_code == 304
    assert again["ETag"] == first["ETag"]
    assert full_path_calls == []


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status"),
    [
        ("{not json", "application/json", "", 400),
        ('{"context": [1]}', "application/json", "", 400),
        ('{"context": {}, "extra": 1}', "application/json", "", 200),
        ('{"context": NaN}', "application/json", "", 400),
        ("{}", "text/plain", "", 415),
        ("{}", "application/json", "text/html", 406),
    ],
)
def test_unusual_requests_take_the_full_path(
    client: Client,
    *,
    flags: dict[str, Flag],
    staging: Environment,
    full_path_calls: list[str],
    body: str,
    content_type: str,
    accept: str,
    status: int,
) -> None:
    secret = issue(staging)
    send(client, "post", "/api/v1/evaluate", secret, CONTEXT)  # warm
    full_path_calls.clear()
    headers = {"X-API-Key": secret, **({"Accept": accept} if accept else {})}
    response = client.post(
        "/api/v1/evaluate", data=body, content_type=content_type, headers=headers
    )
    assert response.status_code == status
    assert full_path_calls == ["/api/v1/evaluate"]


def test_unknown_flags_and_wrong_secrets_take_the_full_path(
    client: Client, flags: dict[str, Flag], staging: Environment, full_path_calls: list[str]
) -> None:
    secret = issue(staging)
    send(client, "post", "/api/v1/evaluate", secret, CONTEXT)  # warm
    full_path_calls.clear()
    assert send(client, "post", "/api/v1/evaluate/nope", secret, CONTEXT).status_code == 404
    forged = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert send(client, "post", "/api/v1/evaluate", forged, CONTEXT).status_code == 401
    assert full_path_calls == ["/api/v1/evaluate/nope", "/api/v1/evaluate"]


def test_a_revoked_key_is_refused_at_once(
    client: Client,
    flags: dict[str, Flag],
    staging: Environment,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    secret = issue(staging)
    assert send(client, "post", "/api/v1/evaluate", secret, CONTEXT).status_code == 200
    key = ApiKey.objects.get(lookup=secret[4:16])
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(key=key, actor=None)
    assert send(client, "post", "/api/v1/evaluate", secret, CONTEXT).status_code == 401


def test_an_expired_key_is_refused_by_the_full_path(
    client: Client, flags: dict[str, Flag], staging: Environment, full_path_calls: list[str]
) -> None:
    secret = issue(staging)
    send(client, "post", "/api/v1/evaluate", secret, CONTEXT)  # warm
    data = keys.key(secret[4:16])
    assert data is not None
    from django.utils import timezone  # noqa: PLC0415

    keys.remember_key(secret[4:16], {**data, "expires_at": timezone.now()})
    full_path_calls.clear()
    send(client, "post", "/api/v1/evaluate", secret, CONTEXT)
    assert full_path_calls == ["/api/v1/evaluate"]


@override_settings(FLAGSHIP_EVALUATION_RATE="3/h")
def test_the_rate_limit_holds_on_the_fast_path(
    client: Client, flags: dict[str, Flag], staging: Environment
) -> None:
    secret = issue(staging)
    statuses = [
        send(client, "post", "/api/v1/evaluate", secret, CONTEXT).status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]


def test_a_committed_change_is_served_at_once(
    client: Client,
    flags: dict[str, Flag],
    staging: Environment,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    secret = issue(staging)
    url = "/api/v1/evaluate/banner-text"
    before = send(client, "post", url, secret, CONTEXT).json()
    with django_capture_on_commit_callbacks(execute=True):
        serve(flags["banner-text"], staging, "none")
    after = send(client, "post", url, secret, CONTEXT).json()
    assert after["version"] > before["version"]
    assert after["variant"] == "none"


@pytest.mark.requires_redis
def test_versions_are_pushed_to_every_process_through_redis(
    client: Client,
    flags: dict[str, Flag],
    staging: Environment,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with caching(redis_url()):
        secret = issue(staging)
        send(client, "get", "/api/v1/ruleset", secret, None)  # cold: the full path
        send(client, "get", "/api/v1/ruleset", secret, None)  # warm: starts the listener
        deadline = time.monotonic() + 10
        while not pubsub.subscribed() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pubsub.subscribed()
        first = send(client, "get", "/api/v1/ruleset", secret, None)
        version = int(first["ETag"].strip('"'))
        assert versions.version(staging.pk) == version

        # Another process's commit: only the Redis notice tells this one.
        import redis  # noqa: PLC0415

        redis.Redis.from_url(redis_url()).publish(
            pubsub.channel(pubsub.RULESET_CHANNEL),
            json.dumps({"environment": staging.pk, "version": version + 5}),
        )
        while versions.version(staging.pk) != version + 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert versions.version(staging.pk) == version + 5

        # A key changed elsewhere is dropped here too.
        assert keys.key(secret[4:16]) is not None
        redis.Redis.from_url(redis_url()).publish(pubsub.channel(pubsub.KEY_CHANNEL), secret[4:16])
        while keys.key(secret[4:16]) is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert keys.key(secret[4:16]) is None
