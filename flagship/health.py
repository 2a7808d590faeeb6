"""Liveness and readiness probes for orchestrators and load balancers.

``GET /healthz``: the process is alive and serving requests; it checks no dependency, so a
database outage never gets healthy processes restarted (they keep serving evaluations from
cache). ``GET /readyz``: the database answers, every migration is applied, and Redis answers when
it is configured; 200 ``{"status": "ready", "checks": {...}}``, else 503 with ``"status":
"degraded"``, every check's finding and ``"failing"``, the names of the checks that failed.

``/readyz`` answers within ``FLAGSHIP_READYZ_TIMEOUT`` (0.8 s) whatever is down, inside the 1 s
that Kubernetes gives a probe by default. The checks run in parallel, each in its own thread with
that deadline: a dependency whose circuit breaker is open (``flagship.breakers``) is reported at
once, one that does not answer in time is reported as ``"timeout"``. A check still running from an
earlier probe is waited for again rather than started twice (for up to ``ABANDON_SECONDS``), so a
hanging dependency does not pile up threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from flags import conf
from flagship import breakers
from flagship.logs import in_current_context

logger = logging.getLogger(__name__)

OK = "ok"
ABANDON_SECONDS = 10.0
_migrated_lock = threading.Lock()
_migrated = False  # once every migration is applied, it stays so for this process


def _open(breaker: breakers.Breaker) -> str | None:
    """The finding for a dependency whose breaker is open, else ``None``."""
    if breaker.available():
        return None
    return f"unavailable: circuit open for {breaker.outage_seconds():.1f} s"


def check_database() -> str:
    """``ok`` when the default database answers ``SELECT 1``, else why not."""
    down = _open(breakers.database)
    if down is not None:
        return down
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
    alias = conf.cache_alias()
    try:
        client = _redis_client(caches[alias])
        if client is None:
            return None
        down = _open(breakers.redis_breaker)
        if down is not None:
            return down
        client.ping()
    except Exception as error:  # see check_database
        return f"unavailable: {type(error).__name__}"
    return OK


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive."""
    return JsonResponse({"status": "alive"})


def _database_and_migrations() -> dict[str, str]:
    try:
        database = check_database()
        migrations = check_migrations() if database == OK else "unknown"
    finally:
        connections[DEFAULT_DB_ALIAS].close()  # this thread's connection goes back to the pool
    return {"database": database, "migrations": migrations}


def _redis() -> dict[str, str]:
    finding = check_redis()
    return {} if finding is None else {"redis": finding}


class _Running:
    """One check running in its own thread; its findings once done."""

    def __init__(self, check: Callable[[], dict[str, str]]) -> None:
        self.started = time.monotonic()
        self.done = threading.Event()
        self.findings: dict[str, str] = {}
        # In the starting request's context: the check's log lines carry its request id.
        threading.Thread(target=in_current_context(self._run), args=(check,), daemon=True).start()

    def _run(self, check: Callable[[], dict[str, str]]) -> None:
        try:
            self.findings = check()
        except Exception as error:  # reported as the check's finding
            self.findings = {"error": f"unavailable: {type(error).__name__}"}
        finally:
            self.done.set()


# The checks of /readyz, by the names they report when they time out.
CHECKS: dict[str, tuple[Callable[[], dict[str, str]], tuple[str, ...]]] = {
    "database": (_database_and_migrations, ("database", "migrations")),
    "redis": (_redis, ("redis",)),
}
_running: dict[str, _Running] = {}
_running_lock = threading.Lock()


def run_checks(timeout: float) -> dict[str, str]:
    """Every check's finding within ``timeout`` seconds (``timeout: ...`` for a late one)."""
    deadline = time.monotonic() + timeout
    started: dict[str, _Running] = {}
    with _running_lock:
        for name, (check, _names) in CHECKS.items():
            running = _running.get(name)
            if (
                running is None
                or running.done.is_set()
                or time.monotonic() - running.started > ABANDON_SECONDS
            ):
                # A check stuck that long (a connection that never answers) is left to its
                # thread: a new one gets a fresh chance instead of reporting "timeout" forever.
                running = _running[name] = _Running(check)
            started[name] = running
    findings: dict[str, str] = {}
    for name, running in started.items():
        if running.done.wait(max(0.0, deadline - time.monotonic())):
            findings.update(running.findings)
        else:
            late = f"timeout: no answer within {timeout:g} s"
            findings.update(dict.fromkeys(CHECKS[name][1], late))
            if name == "database":
                findings["migrations"] = "unknown"
    return findings


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Whether this process can serve everything: database, migrations, Redis."""
    checks: dict[str, Any] = run_checks(conf.readyz_timeout())
    failing = [name for name, value in checks.items() if value != OK]
    if failing:
        logger.warning("readiness.degraded", extra={"checks": checks})
        return JsonResponse(
            {"status": "degraded", "checks": checks, "failing": failing}, status=503
        )
    return JsonResponse({"status": "ready", "checks": checks})


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]
