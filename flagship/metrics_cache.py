"""django-redis's cache backend, counting its gets: ``django_cache_get_*_total{backend="redis"}``.

``flagship/settings.py`` puts it in place of ``django_redis.cache.RedisCache`` while metrics are on
(``FLAGSHIP_METRICS_ENABLED``). Only ``get`` is counted, as django-prometheus counts it: a hit is a
stored value, a miss a missing key, a failure a Redis error (raised, or swallowed by
``IGNORE_EXCEPTIONS``).
"""

from __future__ import annotations

from typing import Any

from django_redis.cache import CONNECTION_INTERRUPTED
from django_redis.cache import RedisCache as PlainRedisCache

from flagship import metrics

BACKEND = "redis"
_MISSING = object()


class RedisCache(PlainRedisCache):  # type: ignore[misc]  # django-redis is untyped
    """django-redis, with its gets counted."""

    def get(
        self, key: Any, default: Any = None, version: int | None = None, client: Any = None
    ) -> Any:
        """The cached value (``default`` when missing or failed), counted."""
        metrics.bump(metrics.child(metrics.cache_gets, BACKEND))
        try:
            value = self._get(key, _MISSING, version, client)
        except Exception:
            metrics.bump(metrics.child(metrics.cache_failures, BACKEND))
            raise
        if value is CONNECTION_INTERRUPTED:
            metrics.bump(metrics.child(metrics.cache_failures, BACKEND))
            return default
        if value is _MISSING:
            metrics.bump(metrics.child(metrics.cache_misses, BACKEND))
            return default
        metrics.bump(metrics.child(metrics.cache_hits, BACKEND))
        return value
