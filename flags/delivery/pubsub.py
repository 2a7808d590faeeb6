"""Redis pub/sub: how a committed change and a changed API key reach every process.

Two channels, under ``FLAGSHIP_CHANNEL_PREFIX`` (:func:`channel`):

- ``<prefix>:ruleset-changed``: ``{"environment": id, "version": n}`` (:class:`RulesetChanged`),
  published after every commit (``versions.announce``) and after an outage
  (``versions.reconcile_versions``);
- ``<prefix>:api-key-changed``: the lookup of a key that was revoked, changed or deleted
  (``keys.forget_key``).

Publishing uses one client per Redis URL and process. Receiving is one subscription per process,
to both channels: a daemon thread (started on first use, so after gunicorn's fork; named
:func:`subscriber_name` in ``CLIENT LIST``) that hands each message to the receivers connected
with :func:`connect` (``versions``: the process's versions, then its streams; ``keys``: its key
cache) and tells them when the subscription is confirmed, again after a loss (notices may have
been missed meanwhile), or lost. It runs while evaluation trusts the versions it pushes
(:func:`ensure_listener`, until :func:`stop_listener`) or while a stream is open
(:func:`hold_listener` / :func:`release_listener`).

Without ``REDIS_URL`` (the embedded default), or when Redis refuses a publish, a ruleset notice is
handed to this process's receivers directly, so one process still works.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

import redis

from flags import conf
from flagship import breakers

logger = logging.getLogger(__name__)

RULESET_CHANNEL = "ruleset-changed"
KEY_CHANNEL = "api-key-changed"
# How quickly a dead subscription is noticed: the connection is pinged after this much silence
# and a read that waits longer than SOCKET_TIMEOUT fails.
HEALTH_CHECK_SECONDS = 2
SOCKET_TIMEOUT = 5.0
# How often the listener looks up from its socket to see whether it should stop.
POLL_SECONDS = 0.2
MAX_BACKOFF = 5.0


def channel(name: str) -> str:
    """A channel's full name: ``<FLAGSHIP_CHANNEL_PREFIX>:<name>``."""
    return f"{conf.channel_prefix()}:{name}"


def subscriber_name() -> str:
    """The Redis client name of this process's subscription (``CLIENT LIST`` shows it)."""
    return f"flagship-pubsub-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class RulesetChanged:
    """An environment's ruleset reached ``version``."""

    environment_id: int
    version: int

    def encode(self) -> str:
        """The channel message: ``{"environment": id, "version": n}``."""
        return json.dumps({"environment": self.environment_id, "version": self.version})

    @classmethod
    def decode(cls, raw: bytes | str) -> RulesetChanged | None:
        """Parse a channel message; ``None`` (logged) when it is not one of ours."""
        try:
            body = json.loads(raw)
            environment, version = body["environment"], body["version"]
        except (ValueError, TypeError, KeyError):
            environment = version = None
        if type(environment) is not int or type(version) is not int:
            logger.warning("pubsub.message_rejected", extra={"raw": repr(raw)[:200]})
            return None
        return cls(environment, version)


def _ignore(*args: object) -> None:
    """A receiver's default: not interested."""


@dataclass(frozen=True, slots=True)
class Receiver:
    """What one module does with this process's messages (each callable runs in the listener)."""

    ruleset_changed: Callable[[RulesetChanged], None] = _ignore
    key_changed: Callable[[str], None] = _ignore
    # The subscription is confirmed: ``again`` after a loss, when notices may have been missed.
    subscribed: Callable[[bool], None] = _ignore
    lost: Callable[[], None] = _ignore


_receivers: list[Receiver] = []


def connect(receiver: Receiver) -> None:
    """Hand this process's messages to ``receiver`` too (modules connect once, when imported)."""
    _receivers.append(receiver)


# --- Publishing -------------------------------------------------------------------------------
_publishers: dict[str, redis.Redis] = {}
_publishers_lock = threading.Lock()


def publisher(url: str) -> redis.Redis:
    """The process's client for publishing on ``url``."""
    with _publishers_lock:
        client = _publishers.get(url)
        if client is None:
            client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
            _publishers[url] = client
        return client


def publish_ruleset_changed(environment_id: int, version: int) -> None:
    """Announce that an environment's ruleset reached ``version`` (call it after the commit).

    Never raises for Redis trouble: the write has committed; this process's receivers are then
    told directly and the other processes catch up when Redis is back (``reconcile_versions``).
    """
    change = RulesetChanged(environment_id, version)
    url = conf.redis_url()
    if url and breakers.redis_breaker.available():
        try:
            publisher(url).publish(channel(RULESET_CHANNEL), change.encode())
        except redis.RedisError as error:
            breakers.redis_breaker.failed(error)  # reconciled and published again on recovery
            logger.warning("pubsub.publish_failed", exc_info=True)
        else:
            return
    for receiver in _receivers:
        receiver.ruleset_changed(change)


def publish_key_changed(lookup: str) -> None:
    """Tell every other process that a key changed (nothing to do without Redis)."""
    url = conf.redis_url()
    if url:
        try:
            publisher(url).publish(channel(KEY_CHANNEL), lookup)
        except redis.RedisError:
            logger.warning("pubsub.key_change_not_published", extra={"lookup": lookup})


# --- The listener -----------------------------------------------------------------------------
_lock = threading.RLock()
_thread: threading.Thread | None = None
_thread_pid = 0
_stop = threading.Event()  # the current listener's
_kept = False  # evaluation trusts what the listener pushes: it runs until stop_listener()
_holds = 0  # open streams
_subscribed = False


def subscribed() -> bool:
    """Whether this process's subscription is confirmed (and its receivers were told so)."""
    return _subscribed


def _running() -> bool:
    return (
        _thread_pid == os.getpid()
        and _thread is not None
        and _thread.is_alive()
        and not _stop.is_set()
    )


def ensure_listener() -> None:
    """Start the listener if it does not run, and keep it running (cheap when it does)."""
    global _kept  # noqa: PLW0603  # one listener per process, guarded by _lock
    if _kept and _running():
        return
    with _lock:
        _kept = True
        _start()


def hold_listener() -> None:
    """A stream opened: run the listener at least until :func:`release_listener`."""
    global _holds  # noqa: PLW0603  # see ensure_listener
    with _lock:
        _holds += 1
        _start()


def release_listener() -> None:
    """A stream closed: the last one stops the listener unless evaluation keeps it."""
    global _holds  # noqa: PLW0603  # see ensure_listener
    with _lock:
        _holds = max(0, _holds - 1)
        if _holds == 0 and not _kept:
            _stop_thread()


def stop_listener() -> None:
    """Stop the listener (it exits within ``POLL_SECONDS``) and tell the receivers (tests)."""
    global _kept  # noqa: PLW0603  # see ensure_listener
    with _lock:
        _kept = False
        _stop_thread()


def _start() -> None:
    global _thread, _thread_pid, _stop  # noqa: PLW0603  # see ensure_listener
    url = conf.redis_url()
    if _running() or not url:
        return
    previous = _thread if _thread_pid == os.getpid() else None
    _stop = threading.Event()
    _thread = threading.Thread(
        target=_listen,
        args=(url, channel(RULESET_CHANNEL), channel(KEY_CHANNEL), _stop, previous),
        name="flagship-pubsub",
        daemon=True,
    )
    _thread_pid = os.getpid()
    _thread.start()


def _stop_thread() -> None:
    _stop.set()
    _set_subscribed(None, value=False)


def _set_subscribed(stop: threading.Event | None, *, value: bool, again: bool = False) -> None:
    """Tell the receivers first, then flip :func:`subscribed` (so it implies they know)."""
    global _subscribed  # noqa: PLW0603  # see ensure_listener
    with _lock:
        if stop is not None and (stop is not _stop or stop.is_set()):
            return  # a listener that was replaced or stopped no longer speaks for the process
        for receiver in _receivers:
            if value:
                receiver.subscribed(again)
            else:
                receiver.lost()
        _subscribed = value


def _listen(
    url: str,
    rulesets_channel: str,
    keys_channel: str,
    stop: threading.Event,
    previous: threading.Thread | None,
) -> None:
    if previous is not None:
        previous.join(2 * POLL_SECONDS)  # its subscription closes before this one opens
    attempt = 0
    confirmed_before = False
    while not stop.is_set():
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=1,
            socket_timeout=SOCKET_TIMEOUT,
            health_check_interval=HEALTH_CHECK_SECONDS,
            client_name=subscriber_name(),
        )
        pubsub = client.pubsub()  # type: ignore[no-untyped-call]  # redis-py: unannotated
        try:
            pubsub.subscribe(rulesets_channel, keys_channel)
            confirmed = 0
            while not stop.is_set():
                message = pubsub.get_message(timeout=POLL_SECONDS)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    confirmed += 1
                    if confirmed == 2:  # both channels
                        _set_subscribed(stop, value=True, again=confirmed_before)
                        confirmed_before = True
                        attempt = 0
                        logger.info("pubsub.subscribed")
                elif message["type"] == "message":
                    _deliver(message["channel"] in (keys_channel, keys_channel.encode()), message)
        except (redis.RedisError, OSError) as error:
            if _subscribed:
                logger.warning("pubsub.subscription_lost", extra={"error": repr(error)})
            _set_subscribed(stop, value=False)
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


def _deliver(about_key: bool, message: dict[str, object]) -> None:
    data = message["data"]
    if about_key:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        for receiver in _receivers:
            receiver.key_changed(text)
        return
    change = RulesetChanged.decode(data if isinstance(data, (bytes, str)) else str(data))
    if change is not None:
        for receiver in _receivers:
            receiver.ruleset_changed(change)
