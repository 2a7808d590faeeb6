"""The cache and degradation tests' setup: caches on and fresh, the evaluation endpoints, a call."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.test import Client
from django.test.utils import override_settings

from flags.delivery import compiled, keys, pubsub, shared_cache, versions
from flags.evaluation import counting, throttling

EVALUATE = "/api/v1/evaluate"
RULESET = "/api/v1/ruleset"
OFREP_BULK = "/ofrep/v1/evaluate/flags"
OFREP_ONE = "/ofrep/v1/evaluate/flags/discount"
ENDPOINTS = (("post", EVALUATE), ("post", OFREP_BULK), ("post", OFREP_ONE), ("get", RULESET))


def cache_config(redis_location: str | None = None) -> dict[str, Any]:
    """``CACHES`` with both aliases in a namespace of their own (Redis at a location, or locmem)."""
    namespace = f"flagship-test-{uuid.uuid4().hex[:12]}"
    if redis_location is None:
        base: dict[str, Any] = {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": namespace,
        }
        return {"default": base, "flagship": dict(base)}
    options = {
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        "SOCKET_CONNECT_TIMEOUT": 1,
        "SOCKET_TIMEOUT": 1,
    }
    base = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": redis_location,
        "KEY_PREFIX": namespace,
    }
    return {
        "default": {**base, "OPTIONS": {**options, "IGNORE_EXCEPTIONS": True}},
        "flagship": {**base, "OPTIONS": {**options, "IGNORE_EXCEPTIONS": False}},
    }


def forget_process_state() -> None:
    """What a fresh process knows: nothing compiled, no last-known keys, no open breaker."""
    pubsub.stop_listener()
    compiled.clear()
    versions.clear()
    keys.clear()
    throttling.limiter.clear()
    counting.clear()
    shared_cache.reset()


@contextmanager
def caching(redis_location: str | None = None, **extra: Any) -> Iterator[None]:
    """Turn the shared caches on (as in production), in a fresh namespace."""
    values: dict[str, Any] = {
        "CACHES": cache_config(redis_location),
        "FLAGSHIP_KEY_CACHE_SECONDS": 30,
        "FLAGSHIP_VERSION_CACHE_SECONDS": 30,
        "FLAGSHIP_RULESET_CACHE_SECONDS": 3600,
        # Notices of other tests (and of other test runs sharing the Redis) never arrive here.
        "FLAGSHIP_CHANNEL_PREFIX": f"flagship-test-{uuid.uuid4().hex[:12]}",
    }
    if redis_location is not None:
        values["REDIS_URL"] = redis_location
    values.update(extra)
    forget_process_state()
    with override_settings(**values):
        try:
            yield
        finally:
            forget_process_state()


def call(client: Client, method: str, url: str, secret: str, body: Any = None) -> Any:
    """Call an evaluation endpoint with a key."""
    headers = {"X-API-Key": secret}
    if method == "get":
        return client.get(url, headers=headers)
    data = json.dumps(body if body is not None else {"context": {"targetingKey": "u1"}})
    return client.post(url, data=data, content_type="application/json", headers=headers)


def redis_url() -> str:
    """The configured Redis URL (tests marked requires_redis only)."""
    return str(getattr(settings, "REDIS_URL", ""))
