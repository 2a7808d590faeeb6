"""Liveness and readiness probes for orchestrators and load balancers.

``GET /healthz``: the process is alive and serving requests; it checks no dependency, so a
database outage never gets healthy processes restarted (they keep serving evaluations from
cache). ``GET /readyz``: the database answers, every migration is applied, and Redis answers when
it is configured; 200 ``{"status": "ready", "checks": {...}}``, else 503 with ``"status":
"degraded"`` and the failing check. Each check is bounded by its driver's connect timeout.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

OK = "ok"
_migrated_lock = threading.Lock()
_migrated = False  # once every migration is applied, it stays so for this process


def check_database() -> str:
    """``ok`` when the default database answers ``SELECT 1``, else why not."""
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any failure is "not ready", reported
        return f"unavailable: {type(error).__name__}"
    return OK


def check_migrations() -> str:
    """``ok`` when no migration is waiting to be applied."""
    global _migrated  # noqa: PLW0603  # a per-process memo, guarded by the lock
    with _migrated_lock:
        if _migrated:
            return OK
    try:
        connection = connections[DEFAULT_DB_ALIAS]
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as error:  # see check_database
        return f"unknown: {type(error).__name__}"
    if plan:
        return f"pending: {len(plan)} migration(s)"
    with _migrated_lock:
        _migrated = True
    return OK


def _redis_client(backend: Any) -> Any | None:
    """The redis-py client behind a cache backend, or ``None`` when it is not Redis."""
    client = getattr(backend, "client", None)
    if client is not None and hasattr(client, "get_client"):  # django-redis
        return client.get_client(write=True)
    inner = getattr(backend, "_cache", None)
    if inner is not None and hasattr(inner, "get_client"):  # Django's own RedisCache
        return inner.get_client(write=True)
    return None


def check_redis() -> str | None:
    """``ok`` when Redis answers PING; ``None`` when the cache is not Redis (embedded default)."""
    alias = str(getattr(settings, "FLAGSHIP_CACHE_ALIAS", "default"))
    try:
        client = _redis_client(caches[alias])
        if client is None:
            return None
        client.ping()
    except Exception as error:  # see check_database
        return f"unavailable: {type(error).__name__}"
    return OK


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive."""
    return JsonResponse({"status": "alive"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Whether this process can serve everything: database, migrations, Redis."""
    checks: dict[str, Any] = {"database": check_database()}
    checks["migrations"] = check_migrations() if checks["database"] == OK else "unknown"
    redis = check_redis()
    if redis is not None:
        checks["redis"] = redis
    ready = all(value == OK for value in checks.values())
    if not ready:
        logger.warning("readiness.degraded", extra={"checks": checks})
    return JsonResponse(
        {"status": "ready" if ready else "degraded", "checks": checks},
        status=200 if ready else 503,
    )


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]
