"""What every evaluation reads, held in process memory and kept current by a push from Redis.

A warm evaluation used to cost three or four Redis round trips (the key's essentials, the
environment's current version, the rate-limit counter), each about as expensive as the whole
trivial Django view. This module removes them from the hot path:

- **Versions.** One daemon thread per process (started on first use, after gunicorn's fork)
  subscribes to the change channels. While its subscription is confirmed, the version it last heard
  for an environment is the current one: a committed change publishes its version on commit, the
  thread applies it to ``_versions``. Until an environment has been heard of, the first reader
  fetches the version (Redis, else the database) and records it. When the subscription is lost,
  every version is forgotten and readers go back to reading the shared cache on each request
  (``flags.evaluation.cache.current_version``), until the subscription is confirmed again.
- **API keys.** Essentials of environment keys (no secret, only its hash) are kept for
  ``FLAGSHIP_KEY_LOCAL_CACHE_SECONDS`` (default 5); revoking or changing a key through FlagShip
  publishes its lookup on ``flagship:api-key-changed`` and every process drops it at once.

Without ``REDIS_URL`` (the embedded default) there is nothing to subscribe to: versions are read
from the in-process cache as before, and key essentials are dropped by the writer itself (one
process). With the shared caches turned off (``FLAGSHIP_VERSION_CACHE_SECONDS=0``, the test
default) nothing here is trusted and every read goes to the database.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from typing import Any

import redis

from flags import conf
from flagship import breakers

logger = logging.getLogger(__name__)

RULESET_CHANNEL = "ruleset-changed"  # under FLAGSHIP_CHANNEL_PREFIX (flags.events.channel())
KEY_CHANNEL = "api-key-changed"
# How quickly a dead subscription is noticed: the connection is pinged after this much silence
# and a read that waits longer than SOCKET_TIMEOUT fails.
HEALTH_CHECK_SECONDS = 2
SOCKET_TIMEOUT = 5.0
MAX_BACKOFF = 5.0
MAX_KEYS = 10_000

_lock = threading.Lock()
_versions: dict[int, int] = {}
_keys: dict[str, tuple[dict[str, Any], float]] = {}
# Bumped whenever the subscription is (re)confirmed or lost: a version read from the shared cache
# is only recorded if no bump happened since the read began (it could predate a missed notice).
_generation = 0
_subscribed = False
_listener: threading.Thread | None = None
_listener_pid = 0
_stop = threading.Event()  # the current listener's


def channel(name: str) -> str:
    """A pub/sub channel's full name: ``<FLAGSHIP_CHANNEL_PREFIX>:<name>``."""
    return f"{conf.channel_prefix()}:{name}"


def enabled() -> bool:
    """Whether versions may be trusted from memory (Redis configured and its caches turned on)."""
    return bool(conf.redis_url()) and conf.version_cache_seconds() > 0


def key_seconds() -> float:
    """How long a process trusts an environment key's essentials without asking Redis."""
    return min(conf.key_local_cache_seconds(), float(conf.key_cache_seconds()))


# --- Versions ---------------------------------------------------------------------------------
def version(environment_id: int) -> int | None:
    """The environment's current version if this process knows it for sure, else ``None``."""
    if not _subscribed:
        ensure_listener()
        return None
    return _versions.get(environment_id)


def generation() -> int:
    """The subscription generation (pass it back to :func:`record_version`)."""
    return _generation if _subscribed else -1


def record_version(environment_id: int, value: int, since: int) -> None:
    """Record a version read elsewhere, if the subscription held since the read began."""
    with _lock:
        if not _subscribed or _generation != since:
            return
        if value > _versions.get(environment_id, 0):
            _versions[environment_id] = value


def heard(environment_id: int, value: int) -> None:
    """A change was committed (here or in another process): the environment is at ``value``."""
    with _lock:
        if value > _versions.get(environment_id, 0):
            _versions[environment_id] = value


# --- API keys ---------------------------------------------------------------------------------
def key(lookup: str) -> dict[str, Any] | None:
    """An environment key's essentials cached in this process, unless expired."""
    entry = _keys.get(lookup)
    if entry is None:
        return None
    if entry[1] <= time.monotonic():
        _keys.pop(lookup, None)
        return None
    return entry[0]


def remember_key(lookup: str, data: dict[str, Any]) -> None:
    """Keep an environment key's essentials for :func:`key_seconds`."""
    seconds = key_seconds()
    if seconds <= 0:
        return
    with _lock:
        if len(_keys) >= MAX_KEYS and lookup not in _keys:
            _keys.pop(next(iter(_keys)))
        _keys[lookup] = (data, time.monotonic() + seconds)


def forget_key(lookup: str) -> None:
    """Drop a key here and, through Redis, in every other process."""
    _keys.pop(lookup, None)
    url = conf.redis_url()
    if url:
        try:
            publisher(url).publish(channel(KEY_CHANNEL), lookup)
        except redis.RedisError:
            logger.warning("local.key_forget_not_published", extra={"lookup": lookup})


_publishers: dict[str, redis.Redis] = {}
_publishers_lock = threading.Lock()


def publisher(url: str) -> redis.Redis:
    """The process's client for publishing on ``url`` (ruleset notices and key changes)."""
    with _publishers_lock:
        client = _publishers.get(url)
        if client is None:
            client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
            _publishers[url] = client
        return client


# --- The listener -----------------------------------------------------------------------------
def subscribed() -> bool:
    """Whether this process's subscription is confirmed (versions are pushed)."""
    return _subscribed


def ensure_listener() -> None:
    """Start this process's listener thread if it should run and does not (cheap when it does)."""
    global _listener, _listener_pid, _stop  # noqa: PLW0603  # one listener per process
    if _listener_pid == os.getpid() and _listener is not None and _listener.is_alive():
        return
    if not enabled():
        return
    with _lock:
        if _listener_pid == os.getpid() and _listener is not None and _listener.is_alive():
            return
        _stop = threading.Event()
        _listener = threading.Thread(
            target=_listen,
            args=(conf.redis_url(), channel(RULESET_CHANNEL), channel(KEY_CHANNEL), _stop),
            name="flagship-local-versions",
            daemon=True,
        )
        _listener_pid = os.getpid()
        _listener.start()


def stop_listener() -> None:
    """Stop the listener (it exits within a second) and forget what it taught (tests, shutdown)."""
    global _listener  # noqa: PLW0603  # see ensure_listener
    with _lock:
        _stop.set()
        _listener = None
    _set_subscribed(value=False)


def clear() -> None:
    """Forget versions and keys (tests)."""
    with _lock:
        _versions.clear()
        _keys.clear()


def _set_subscribed(*, value: bool, stop: threading.Event | None = None) -> None:
    global _subscribed, _generation  # noqa: PLW0603  # guarded by _lock
    with _lock:
        if stop is not None and (stop is not _stop or stop.is_set()):
            return  # a listener that was replaced or stopped no longer speaks for the process
        _generation += 1
        _subscribed = value
        _versions.clear()  # notices may have been missed: learn every version again


def _listen(url: str, rulesets_channel: str, keys_channel: str, stop: threading.Event) -> None:
    attempt = 0
    while not stop.is_set():
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=1,
            socket_timeout=SOCKET_TIMEOUT,
            health_check_interval=HEALTH_CHECK_SECONDS,
        )
        pubsub = client.pubsub()  # type: ignore[no-untyped-call]  # redis-py: unannotated
        try:
            pubsub.subscribe(rulesets_channel, keys_channel)
            confirmed = 0
            while not stop.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    confirmed += 1
                    if confirmed == 2:  # both channels
                        _set_subscribed(value=True, stop=stop)
                        attempt = 0
                        logger.info("local.subscribed")
                elif message["type"] == "message":
                    _apply(
                        message["channel"] in (keys_channel, keys_channel.encode()), message["data"]
                    )
        except (redis.RedisError, OSError) as error:
            if _subscribed:
                logger.warning("local.subscription_lost", extra={"error": repr(error)})
            _set_subscribed(value=False, stop=stop)
            if not stop.is_set():
                breakers.redis_breaker.failed(error)  # nobody else need wait to find out
        finally:
            try:
                pubsub.close()
                client.close()
            except (redis.RedisError, OSError):  # pragma: no cover - closing a dead socket
                pass
        attempt += 1
        stop.wait(random.uniform(0, min(MAX_BACKOFF, 0.1 * 2**attempt)))  # noqa: S311


def _apply(about_key: bool, data: bytes | str) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if about_key:
        _keys.pop(text, None)
        return
    try:
        body = json.loads(text)
        environment_id, value = body["environment"], body["version"]
    except (ValueError, TypeError, KeyError):
        logger.warning("local.bad_message", extra={"raw": text[:200]})
        return
    if type(environment_id) is int and type(value) is int:
        heard(environment_id, value)
