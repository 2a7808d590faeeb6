"""Degradation, proven by really cutting Redis or PostgreSQL with a loopback proxy.

Each test points FlagShip at a ``FaultProxy`` in front of the real service, warms up, severs the
proxy (connections closed, new ones refused), checks what still answers, restores it and checks
the recovery.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connections
from django.db.models import F
from django.test import Client
from pytest_django import DjangoAssertNumQueries, DjangoCaptureOnCommitCallbacks

from accounts.models import ApiKey, User
from flags import services
from flags.delivery import compiled, pubsub, shared_cache, versions
from flags.models import Environment, Flag, Project
from flagship import breakers
from flagship.faults import FaultProxy, wait_until

from .caching import (
    ENDPOINTS,
    EVALUATE,
    OFREP_BULK,
    OFREP_ONE,
    RULESET,
    caching,
    call,
    forget_process_state,
    redis_url,
)
from .evaluation_data import build_flags, issue, issue_admin

FLAGS_API = "/api/v1/projects/demo/flags/"


def marked(url: str, body: dict[str, Any], down: str) -> dict[str, Any]:
    """What ``url`` answers with ``body`` while ``down`` is unreachable (OFREP: in metadata)."""
    if url == OFREP_BULK:
        return {**body, "metadata": {"flagshipDegraded": down}}
    if url == OFREP_ONE:
        return {**body, "metadata": {**body["metadata"], "flagshipDegraded": down}}
    return body


def served_while_down(client: Client, method: str, url: str, secret: str, down: str) -> Any:
    """Call ``url``: 200, marked ``FlagShip-Degraded: <down>``; its JSON body."""
    response = call(client, method, url, secret)
    assert response.status_code == 200, (url, response.content)
    assert response["FlagShip-Degraded"] == down
    return response.json()


# --- Redis -------------------------------------------------------------------------------------
@pytest.fixture
def redis_proxy() -> Iterator[FaultProxy]:
    parts = urlsplit(redis_url())
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as proxy:
        yield proxy


@pytest.mark.requires_redis
def test_redis_down__evaluations_answer_and_recover(
    client: Client,
    project: Project,
    staging: Environment,
    redis_proxy: FaultProxy,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    build_flags(project, staging)
    secret = issue(staging, ApiKey.Kind.SERVER)
    # Rate limiting on too: its counter lives in the same Redis and must not fail requests.
    with caching(redis_proxy.url(redis_url()), FLAGSHIP_EVALUATION_RATE="1000/m"):
        expected = {url: call(client, method, url, secret).json() for method, url in ENDPOINTS}
        with django_assert_num_queries(0):
            call(client, "post", EVALUATE, secret)
        redis_proxy.sever()
        assert wait_until(lambda: not breakers.redis_breaker.available())  # the subscription's loss
        for method, url in ENDPOINTS:  # process cache, then the database
            body = served_while_down(client, method, url, secret, "redis")
            assert body == marked(url, expected[url], "redis")
        forget_process_state()  # a process that never compiled it: built from the database
        for method, url in ENDPOINTS:
            body = served_while_down(client, method, url, secret, "redis")
            assert body == marked(url, expected[url], "redis")
        redis_proxy.restore()
        assert wait_until(breakers.redis_breaker.available)  # the background probe closes it
        response = call(client, "post", EVALUATE, secret)  # fills the cache again
        assert "FlagShip-Degraded" not in response
        with django_assert_num_queries(0):  # recovered: warm and query-free again
            assert call(client, "post", EVALUATE, secret).status_code == 200


@pytest.mark.requires_redis
def test_pubsub_lost__versions_are_read_again__and_pushed_after_recovery(
    client: Client,
    project: Project,
    staging: Environment,
    redis_proxy: FaultProxy,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    flags = build_flags(project, staging)
    secret = issue(staging, ApiKey.Kind.SERVER)
    with caching(redis_proxy.url(redis_url())):
        call(client, "get", RULESET, secret)  # cold: the full path
        call(client, "get", RULESET, secret)  # warm: starts this process's subscription
        assert wait_until(pubsub.subscribed)
        version = int(call(client, "get", RULESET, secret)["ETag"].strip('"'))
        assert versions.version(staging.pk) == version  # pushed versions are trusted

        redis_proxy.sever()
        assert wait_until(lambda: not pubsub.subscribed())
        # The cache is cut too.
        assert wait_until(lambda: shared_cache.get_version(staging.pk) is None)
        # Another process commits a change while the notices cannot travel: only the database
        # knows. This process must not keep serving the version it was last told about.
        Environment.objects.filter(pk=staging.pk).update(ruleset_version=F("ruleset_version") + 1)
        assert versions.version(staging.pk) is None
        assert call(client, "get", RULESET, secret)["ETag"] == f'"{version + 1}"'

        redis_proxy.restore()
        assert wait_until(pubsub.subscribed)  # resubscribes by itself
        assert wait_until(breakers.redis_breaker.available)  # the background probe closes it
        with django_capture_on_commit_callbacks(execute=True):
            services.flag_toggle(
                state=flags["banner-text"].states.get(environment=staging),
                enabled=False,
                actor=None,
            )
        changed = Environment.objects.get(pk=staging.pk).ruleset_version
        assert wait_until(lambda: versions.version(staging.pk) == changed)  # pushed again
        assert call(client, "get", RULESET, secret)["ETag"] == f'"{changed}"'


@pytest.mark.requires_redis
def test_redis_back__versions_reconciled_with_the_database_at_once(
    transactional_db: None,
    redis_proxy: FaultProxy,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    # Committed data (transactional_db): the recovery hook reads it from the probe's thread.
    project = services.project_create(key="demo", name="Demo")
    staging = project.environments.get(key="staging")
    flags = build_flags(project, staging)
    with caching(redis_proxy.url(redis_url())):
        before = Environment.objects.get(pk=staging.pk).ruleset_version
        shared_cache.announce_version(staging.pk, before)  # cached for 30 s, as after any change
        redis_proxy.sever()
        assert shared_cache.get_version(staging.pk) is None  # opens the breaker
        with django_capture_on_commit_callbacks(execute=True):  # announcing it fails
            services.flag_toggle(
                state=flags["banner-text"].states.get(environment=staging),
                enabled=False,
                actor=None,
            )
        changed = Environment.objects.get(pk=staging.pk).ruleset_version
        assert changed > before

        redis_proxy.restore()
        # The probe closes the breaker and reconciles: the stale key is not trusted for 30 s.
        assert wait_until(lambda: shared_cache.get_version(staging.pk) == changed)


@pytest.mark.requires_redis
def test_redis_down__readyz_degraded_healthz_alive(
    client: Client, db: None, redis_proxy: FaultProxy
) -> None:
    with caching(redis_proxy.url(redis_url())):
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "checks": {"database": "ok", "migrations": "ok", "redis": "ok"},
        }
        redis_proxy.sever()
        degraded = client.get("/readyz")
        assert degraded.status_code == 503
        assert degraded.json()["status"] == "degraded"
        assert degraded.json()["checks"]["redis"].startswith("unavailable")
        assert degraded.json()["checks"]["database"] == "ok"
        assert client.get("/healthz").status_code == 200
        redis_proxy.restore()
        assert client.get("/readyz").status_code == 200


# --- PostgreSQL ------------------------------------------------------------------------------
@pytest.fixture
def database_proxy(transactional_db: None) -> Iterator[FaultProxy]:
    """Re-point the default connection at a proxy in front of the test database."""
    connection = connections["default"]
    original = connection.settings_dict.copy()
    original_options = dict(original.get("OPTIONS", {}))
    connection.close()
    if original_options.get("pool"):
        connection.close_pool()  # type: ignore[attr-defined]  # the PostgreSQL backend's
    with FaultProxy(
        original.get("HOST") or "127.0.0.1", int(original.get("PORT") or 5432)
    ) as proxy:
        connection.settings_dict["HOST"] = proxy.host
        connection.settings_dict["PORT"] = str(proxy.port)
        # Plain connections, so a refused connection fails at once instead of waiting on a pool.
        connection.settings_dict["OPTIONS"] = {
            key: value for key, value in original_options.items() if key != "pool"
        }
        try:
            yield proxy
        finally:
            proxy.restore()
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(original)
            connection.settings_dict["OPTIONS"] = original_options


def outage_world() -> tuple[Project, Environment, str, str]:
    """Project demo with flags in staging, a server key of staging and an admin token."""
    # A superuser, not a role: an earlier transactional test may have flushed the role groups.
    administrator = User.objects.create_superuser("root", "root@example.com", "x-not-used-x")
    project = services.project_create(key="demo", name="Demo")
    staging = project.environments.get(key="staging")
    build_flags(project, staging)
    return project, staging, issue(staging, ApiKey.Kind.SERVER), issue_admin(administrator)


@pytest.mark.requires_postgres
def test_postgres_down__evaluations_answer_writes_503_and_recover(
    client: Client, database_proxy: FaultProxy
) -> None:
    _project, staging, server, admin = outage_world()
    with caching():
        expected = {url: call(client, method, url, server).json() for method, url in ENDPOINTS}
        assert database_proxy.accepted > 0  # the requests did go through the proxy
        version = Environment.objects.get(pk=staging.pk).ruleset_version
        flag_count = Flag.objects.count()

        database_proxy.sever()
        for method, url in ENDPOINTS:  # from the key and version caches and the compiled ruleset
            response = call(client, method, url, server)
            assert response.status_code == 200, (url, response.content)
            assert response.json() == expected[url]
        # Even with the shared cache emptied, this process serves its last known ruleset.
        shared_cache.backend().clear()
        response = call(client, "post", EVALUATE, server)
        assert response.status_code == 200
        assert response.json() == expected[EVALUATE]

        written = client.post(
            FLAGS_API,
            data=json.dumps({"key": "during-outage", "name": "During outage"}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert written.status_code == 503
        assert written["Content-Type"] == "application/problem+json"
        assert written.json()["code"] == "database_unavailable"
        assert written["Retry-After"]
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("unavailable")
        assert client.get("/healthz").status_code == 200

        database_proxy.restore()
        connections["default"].close()
        assert wait_until(breakers.database.available)  # the background probe closes the breaker
        # Nothing half-written, and everything answers again.
        assert Flag.objects.count() == flag_count
        assert Environment.objects.get(pk=staging.pk).ruleset_version == version
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.json()
        created = client.post(
            FLAGS_API,
            data=json.dumps({"key": "after-outage", "name": "After outage"}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert created.status_code == 201, created.content
        response = call(client, "post", EVALUATE, server)
        assert response.status_code == 200
        assert "after-outage" in response.json()["flags"]


@pytest.mark.requires_postgres
def test_postgres_down__cold_process_without_cache_answers_503_not_500(
    client: Client, database_proxy: FaultProxy
) -> None:
    project = services.project_create(key="demo", name="Demo")
    staging = project.environments.get(key="staging")
    build_flags(project, staging)
    server = issue(staging, ApiKey.Kind.SERVER)
    with caching():
        database_proxy.sever()
        forget_process_state()
        response = call(client, "post", EVALUATE, server)
        assert response.status_code == 503
        assert response.json()["code"] == "database_unavailable"
    compiled.clear()
    versions.clear()


@pytest.mark.requires_postgres
def test_postgres_down__graphql_evaluates_from_memory_and_refuses_writes_503(
    client: Client, database_proxy: FaultProxy
) -> None:
    # Given a warm process: a server key has evaluated through GraphQL once
    project, staging, server, admin = outage_world()
    evaluate = json.dumps(
        {"query": '{ evaluate(environment: "staging") { version flags { key value } } }'}
    )
    flag = Flag.objects.filter(project=project).order_by("key")[0]
    toggle = json.dumps(
        {
            "query": f'mutation {{ toggleFlag(project: "demo", flag: "{flag.key}", '
            'environment: "staging", enabled: true) { state { enabled } } }'
        }
    )

    def post(body: str, secret: str) -> Any:
        return client.post(
            "/graphql", body, content_type="application/json", headers={"X-API-Key": secret}
        )

    with caching():
        expected = post(evaluate, server).json()
        assert "errors" not in expected
        version = Environment.objects.get(pk=staging.pk).ruleset_version

        # When PostgreSQL is cut
        database_proxy.sever()
        evaluated = post(evaluate, server)
        written = post(toggle, admin)

        # Then evaluation answers the same from memory, and the write is REST's 503
        assert evaluated.status_code == 200
        assert evaluated.json() == expected
        assert written.status_code == 503
        error = written.json()["errors"][0]
        assert error["extensions"]["code"] == "database_unavailable"
        assert written["Retry-After"]

        database_proxy.restore()
        connections["default"].close()
        assert wait_until(breakers.database.available)
        # Nothing half-written; the write goes through once PostgreSQL is back
        assert Environment.objects.get(pk=staging.pk).ruleset_version == version
        again = post(toggle, admin)
        assert again.json()["data"]["toggleFlag"]["state"] == {"enabled": True}
