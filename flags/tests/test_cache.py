"""The evaluation caches: zero queries when warm, rebuilt on commit, revocation within the TTL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from pytest_django import DjangoAssertNumQueries, DjangoCaptureOnCommitCallbacks

from accounts.models import ApiKey
from accounts.services import api_key_issue, api_key_revoke
from flags.delivery import compiled, pubsub, shared_cache
from flags.models import Environment, Flag, Project

from .caching import ENDPOINTS, EVALUATE, RULESET, caching, call, forget_process_state
from .evaluation_data import build_flags, issue, serve


@pytest.fixture(autouse=True)
def _caches_on() -> Iterator[None]:
    with caching():
        yield


@pytest.fixture
def flags(project: Project, staging: Environment) -> dict[str, Flag]:
    return build_flags(project, staging)


@pytest.fixture
def server_key(flags: dict[str, Flag], staging: Environment) -> str:
    return issue(staging, ApiKey.Kind.SERVER)


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_warm_endpoints_make_no_query(
    client: Client,
    server_key: str,
    method: str,
    url: str,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    assert call(client, method, url, server_key).status_code == 200  # cold: fills the caches
    with django_assert_num_queries(0):
        assert call(client, method, url, server_key).status_code == 200


def test_client_key_warm_evaluation_makes_no_query(
    client: Client, staging: Environment, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    build_flags(staging.project, staging)
    secret = issue(staging, ApiKey.Kind.CLIENT)
    first = call(client, "post", EVALUATE, secret)
    with django_assert_num_queries(0):
        again = call(client, "post", EVALUATE, secret)
    assert again.json() == first.json()
    assert "banner-text" not in again.json()["flags"]  # still a client key: server-only hidden


def test_last_used_written_once_then_not_within_the_minute(
    client: Client, server_key: str, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    assert ApiKey.objects.get(kind="server").last_used_at is None
    call(client, "post", EVALUATE, server_key)
    assert ApiKey.objects.get(kind="server").last_used_at is not None
    forget_process_state()  # even another process (no local memory) sees the cache marker
    call(client, "post", EVALUATE, server_key)  # compiles again; the key and version are cached
    with django_assert_num_queries(0):
        call(client, "post", EVALUATE, server_key)


def test_last_used_written_again_once_the_minute_passed(
    client: Client, server_key: str, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    call(client, "post", EVALUATE, server_key)
    key = ApiKey.objects.get(kind="server")
    forget_process_state()
    shared_cache.delete(f"api-key-used:{key.pk}")  # the minute passed
    call(client, "post", EVALUATE, server_key)  # recompiles (process state forgotten)
    shared_cache.delete(f"api-key-used:{key.pk}")
    forget_process_state()
    assert key.environment_id is not None
    compiled.compiled_ruleset(Environment.objects.get(pk=key.environment_id))
    with django_assert_num_queries(1):  # the one UPDATE of last_used_at
        call(client, "post", EVALUATE, server_key)


def test_a_change_is_served_after_its_commit(
    client: Client,
    *,
    flags: dict[str, Flag],
    staging: Environment,
    server_key: str,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    before = call(client, "post", EVALUATE, server_key).json()
    assert before["flags"]["legacy"]["reason"] == "DISABLED"
    with django_capture_on_commit_callbacks(execute=True):
        serve(flags["legacy"], staging, "on")
    staging.refresh_from_db()
    assert staging.ruleset_version > before["version"]
    # The commit stored the new version and its document in the shared cache.
    assert shared_cache.get_version(staging.pk) == staging.ruleset_version
    document = shared_cache.get_document(staging.pk, staging.ruleset_version)
    assert document is not None
    assert document["flags"]["legacy"]["enabled"] is True
    # So the next evaluation, even in a process that never saw it, builds nothing from the DB.
    forget_process_state()
    with django_assert_num_queries(0):
        after = call(client, "post", EVALUATE, server_key).json()
    assert after["version"] == staging.ruleset_version
    assert after["flags"]["legacy"] == {"value": True, "variant": "on", "reason": "STATIC"}


def test_a_stale_document_is_not_used(
    client: Client, flags: dict[str, Flag], staging: Environment, server_key: str
) -> None:
    call(client, "get", RULESET, server_key)
    old = shared_cache.get(shared_cache.document_key(staging.pk))
    serve(flags["legacy"], staging, "on")  # no commit hook ran: the cached version is stale
    staging.refresh_from_db()
    shared_cache.set(shared_cache.version_key(staging.pk), staging.ruleset_version, 30)
    # A document one version behind.
    shared_cache.set(shared_cache.document_key(staging.pk), old, 30)
    forget_process_state()
    body = call(client, "get", RULESET, server_key).json()
    assert body["version"] == staging.ruleset_version
    assert body["flags"]["legacy"]["enabled"] is True


def test_the_version_falls_back_to_the_database(
    client: Client,
    staging: Environment,
    server_key: str,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    call(client, "post", EVALUATE, server_key)
    shared_cache.delete(shared_cache.version_key(staging.pk))
    with django_assert_num_queries(1):  # the version only
        assert call(client, "post", EVALUATE, server_key).status_code == 200
    with django_assert_num_queries(0):
        assert call(client, "post", EVALUATE, server_key).status_code == 200


def test_revocation_through_the_service_is_immediate(
    client: Client, flags: dict[str, Flag], staging: Environment
) -> None:
    key, secret = api_key_issue(kind=ApiKey.Kind.SERVER, name="to revoke", environment=staging)
    assert call(client, "post", EVALUATE, secret).status_code == 200
    api_key_revoke(key=key)
    assert call(client, "post", EVALUATE, secret).status_code == 401


def test_revocation_behind_the_cache_takes_effect_within_the_ttl(
    client: Client, flags: dict[str, Flag], staging: Environment, settings: Any
) -> None:
    settings.FLAGSHIP_KEY_CACHE_SECONDS = 1
    key, secret = api_key_issue(kind=ApiKey.Kind.SERVER, name="to revoke", environment=staging)
    assert call(client, "post", EVALUATE, secret).status_code == 200
    # Revoked by another deployment sharing the database (no signal reaches this cache).
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=key.created_at)
    assert call(client, "post", EVALUATE, secret).status_code == 200  # within the TTL
    time.sleep(1.1)
    assert call(client, "post", EVALUATE, secret).status_code == 401


def test_a_wrong_secret_with_a_cached_lookup_is_refused(client: Client, server_key: str) -> None:
    assert call(client, "post", EVALUATE, server_key).status_code == 200
    forged = server_key[:-4] + ("AAAA" if not server_key.endswith("AAAA") else "BBBB")
    assert call(client, "post", EVALUATE, forged).status_code == 401


def test_the_commit_hook_publishes_the_change(
    flags: dict[str, Flag],
    staging: Environment,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    published: list[tuple[int, int]] = []
    monkeypatch.setattr(
        pubsub,
        "publish_ruleset_changed",
        lambda environment_id, version: published.append((environment_id, version)),
    )
    with django_capture_on_commit_callbacks(execute=True):
        serve(flags["legacy"], staging, "on")
    staging.refresh_from_db()
    assert published == [(staging.pk, staging.ruleset_version)]


def test_the_commit_hook_never_fails_the_write(
    flags: dict[str, Flag],
    staging: Environment,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    def broken() -> Any:
        raise ConnectionError("redis is gone")

    monkeypatch.setattr(shared_cache, "backend", broken)
    with django_capture_on_commit_callbacks(execute=True):
        serve(flags["legacy"], staging, "on")  # no exception
    shared_cache.reset()
    assert Flag.objects.get(key="legacy").states.get(environment=staging).enabled is True
