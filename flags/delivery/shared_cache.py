"""The shared (Redis) copies: ruleset documents, current versions, API key essentials, markers.

Everything here goes through Django's cache API on the ``FLAGSHIP_CACHE_ALIAS`` cache (Redis when
``REDIS_URL`` is set, an in-process cache otherwise), and every call is guarded: a cache that
fails is logged and treated as a miss, never raised into a request or a write. The first failure
opens Redis's circuit breaker (``flagship.breakers``): until its background probe sees Redis
answer again, nothing here touches Redis, so an outage costs one failed call per process, not a
socket timeout per request. When the probe succeeds, the versions are reconciled with the
database at once (``versions.reconcile_versions``), so a version key written before the outage is
not trusted over a change committed during it.

This module holds the cache calls and the ruleset keys; the modules that own each state decide
what to store (``docs/architecture.md``, "From a commit to an SDK"). Keys (under the cache's
``KEY_PREFIX``):

- ``ruleset:<environment id>``: ``{"version": v, "document": {...}}``, rebuilt on commit of every
  change (``versions.announce``) and on a miss (``compiled``); only used when its version is the
  one asked for.
- ``ruleset-version:<environment id>``: the environment's current ``ruleset_version``, set on
  commit (``versions``); the database is the fallback when it is missing.
- ``api-key:<lookup>``: the essentials of a server or client key (``keys``).
- ``api-key-used:<id>``: present while the key's ``last_used_at`` was written less than a minute
  ago (``keys``).
- the rate counters of evaluation and streams (``flags.evaluation.throttling``).

Time-to-live of each is a setting (``FLAGSHIP_RULESET_CACHE_SECONDS``,
``FLAGSHIP_VERSION_CACHE_SECONDS``, ``FLAGSHIP_KEY_CACHE_SECONDS``); 0 turns that cache off.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import BaseCache, caches

from flags import conf
from flagship import breakers, metrics

logger = logging.getLogger(__name__)


def backend() -> BaseCache:
    """The Django cache behind the shared copies (``FLAGSHIP_CACHE_ALIAS``)."""
    return caches[conf.cache_alias()]


def available() -> bool:
    """Whether the cache may be tried now (its breaker is closed)."""
    return breakers.redis_breaker.available()


def failed(operation: str, error: Exception) -> None:
    """A cache call failed: open Redis's breaker (when Redis is the cache) and log it."""
    if conf.redis_url():
        breakers.redis_breaker.failed(error)
    logger.warning("cache.failed", extra={"operation": operation, "error": repr(error)})


def reset() -> None:
    """Close the breaker (tests, and after a configuration change)."""
    breakers.redis_breaker.reset()


def get(key: str) -> Any:
    """The cached value of ``key``; ``None`` when missing or when the cache fails."""
    if not available():
        return None
    try:
        return backend().get(key)
    except Exception as error:  # any cache failure is a miss, never an error
        failed("get", error)
        return None


def set(key: str, value: Any, timeout: float) -> bool:  # mirrors the cache API
    """Store ``value``; ``False`` when the cache failed (logged)."""
    if timeout <= 0 or not available():
        return False
    try:
        backend().set(key, value, timeout)
    except Exception as error:  # see get
        failed("set", error)
        return False
    return True


def add(key: str, value: Any, timeout: float) -> bool | None:
    """Store ``value`` only if ``key`` is absent: whether stored; ``None`` if the cache failed."""
    if timeout <= 0 or not available():
        return None
    try:
        return bool(backend().add(key, value, timeout))
    except Exception as error:  # see get
        failed("add", error)
        return None


def incr(key: str, amount: int) -> int | None:
    """Add ``amount`` to the integer at ``key``; the new value, ``None`` if missing or failed."""
    if not available():
        return None
    try:
        return int(backend().incr(key, amount))
    except ValueError:
        return None  # expired between add() and incr(): the next report starts it again
    except Exception as error:  # see get
        failed("incr", error)
        return None


def delete(key: str) -> None:
    """Forget ``key`` (a failure is logged)."""
    if not available():
        return
    try:
        backend().delete(key)
    except Exception as error:  # see get
        failed("delete", error)


# --- Ruleset documents and versions ----------------------------------------------------------
def document_key(environment_id: int) -> str:
    """Cache key of an environment's ruleset document."""
    return f"ruleset:{environment_id}"


def version_key(environment_id: int) -> str:
    """Cache key of an environment's current ruleset version."""
    return f"ruleset-version:{environment_id}"


def get_document(environment_id: int, version: int) -> dict[str, Any] | None:
    """The cached ruleset document of an environment if it is exactly at ``version``."""
    if conf.ruleset_cache_seconds() <= 0:
        return None
    entry = get(document_key(environment_id))
    document = entry.get("document") if isinstance(entry, dict) else None
    if not isinstance(document, dict) or entry.get("version") != version:
        metrics.ruleset_lookup("shared", "miss")
        return None
    metrics.ruleset_lookup("shared", "hit")
    return document


def put_document(environment_id: int, document: dict[str, Any]) -> bool:
    """Store a ruleset document under its own version."""
    entry = {"version": document["version"], "document": document}
    return set(document_key(environment_id), entry, conf.ruleset_cache_seconds())


def get_version(environment_id: int) -> int | None:
    """The cached current version of an environment, if any."""
    if conf.version_cache_seconds() <= 0:
        return None
    value = get(version_key(environment_id))
    return value if isinstance(value, int) else None


def announce_version(environment_id: int, version: int) -> None:
    """Record a committed version (never moving the cached one backwards)."""
    if conf.version_cache_seconds() <= 0:
        return
    current = get(version_key(environment_id))
    if isinstance(current, int) and current > version:
        return
    set(version_key(environment_id), version, conf.version_cache_seconds())


def remember_version(environment_id: int, version: int) -> None:
    """Cache a version read from the database, unless a commit announced one meanwhile."""
    if conf.version_cache_seconds() > 0:
        add(version_key(environment_id), version, conf.version_cache_seconds())
