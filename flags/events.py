"""Ruleset change notifications: published on commit, delivered to the change streams.

A committed change calls :func:`publish_ruleset_changed` (from ``flags.services.common``). With
``REDIS_URL`` the notice goes to the Redis pub/sub channel ``flagship:ruleset-changed`` as JSON
``{"environment": id, "version": n}``, and every process that serves streams receives it through
ONE subscription (per event loop, while it has streams) and hands it to its local streams. Without
Redis (the embedded default), or when Redis refuses the publish, the notice goes straight to the
streams of this process, so a single process still works.

Notices are notify-only and coalesce: a stream only needs the newest version of its environment, so
a slow stream never queues more than one pending version. After the Redis subscription was lost and
restored, every local stream is told to re-read its version (notices may have been missed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis

from flags import conf
from flags.evaluation import local
from flagship import breakers

logger = logging.getLogger(__name__)

CHANNEL = "flagship:ruleset-changed"  # with the default FLAGSHIP_CHANNEL_PREFIX


def channel() -> str:
    """The pub/sub channel of ruleset notices: ``<FLAGSHIP_CHANNEL_PREFIX>:ruleset-changed``."""
    return local.channel(local.RULESET_CHANNEL)


# How long a new stream waits for the process's Redis subscription before going on without it.
READY_TIMEOUT = 2.0
RECONNECT_MAX_DELAY = 5.0


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
            logger.warning("events.bad_message", extra={"raw": repr(raw)[:200]})
            return None
        if type(environment) is not int or type(version) is not int:
            logger.warning("events.bad_message", extra={"raw": repr(raw)[:200]})
            return None
        return cls(environment, version)


def publish_ruleset_changed(environment_id: int, version: int) -> None:
    """Announce that an environment's ruleset reached ``version`` (call it after the commit).

    Never raises for Redis trouble: the write has committed; the streams of this process are then
    told directly and the others catch up when their subscription comes back.
    """
    change = RulesetChanged(environment_id, version)
    url = conf.redis_url()
    if url and breakers.redis_breaker.available():
        try:
            local.publisher(url).publish(channel(), change.encode())
        except redis.RedisError as error:
            breakers.redis_breaker.failed(error)  # reconciled and published again on recovery
            logger.warning("events.publish_failed", exc_info=True)
        else:
            return
    broker.dispatch(change)


RESYNC = None  # what a subscription yields when notices may have been missed


class Subscription:
    """One stream's mailbox for its environment: the newest announced version, or a resync."""

    def __init__(self, environment_id: int, loop: asyncio.AbstractEventLoop) -> None:
        self.environment_id = environment_id
        self.loop = loop
        self._latest: int | None = None
        self._resync = False
        self._signal = asyncio.Event()

    def notify(self, version: int | None) -> None:
        """Deliver a version (``None``: resync) from any thread."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._deliver(version)
            return
        with suppress(RuntimeError):  # the loop has closed: the stream is gone
            self.loop.call_soon_threadsafe(self._deliver, version)

    def _deliver(self, version: int | None) -> None:
        if version is None:
            self._resync = True
        elif self._latest is None or version > self._latest:
            self._latest = version
        self._signal.set()

    async def wait(self) -> int | None:
        """The newest version announced since the last call, or ``RESYNC`` (``None``)."""
        await self._signal.wait()
        self._signal.clear()
        if self._resync:
            self._resync = False
            self._latest = None
            return RESYNC
        latest, self._latest = self._latest, None
        return latest


def subscriber_name() -> str:
    """The Redis client name of this process's subscription (``CLIENT LIST`` shows it)."""
    return f"flagship-events-{os.getpid()}"


class _Listener:
    """The process's Redis subscription for one event loop, dispatching to that loop's streams."""

    def __init__(self, broker: Broker, url: str, loop: asyncio.AbstractEventLoop) -> None:
        self.broker = broker
        self.url = url
        self.loop = loop
        self.ready = asyncio.Event()
        self.task = loop.create_task(self._run(), name="flagship-events-listener")

    async def _run(self) -> None:
        delay = 0.1
        subscribed_before = False
        while True:
            client = aioredis.Redis.from_url(
                self.url,
                socket_connect_timeout=2,
                health_check_interval=30,
                client_name=subscriber_name(),
            )
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(channel())
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self.ready.set()
                        delay = 0.1
                        if subscribed_before:
                            self.broker.resync(self.loop)
                        subscribed_before = True
                    elif message["type"] == "message":
                        change = RulesetChanged.decode(message["data"])
                        if change is not None:
                            self.broker.dispatch(change, loop=self.loop)
            except (redis.RedisError, OSError):
                self.ready.clear()
                logger.warning("events.subscription_lost", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
            finally:
                with suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py: unannotated
                with suppress(Exception):
                    await client.aclose()


class Broker:
    """The streams of this process, by environment, and their Redis subscriptions (one per loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: dict[int, set[Subscription]] = {}
        self._listeners: dict[asyncio.AbstractEventLoop, _Listener] = {}
        self._per_loop: dict[asyncio.AbstractEventLoop, int] = {}

    def dispatch(
        self, change: RulesetChanged, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """Hand a change to the local streams of its environment (of one loop, if given).

        The process's evaluation path learns the version first (``flags.evaluation.local``), so
        a client that reacts to the event by asking this same process gets the new version.
        """
        local.heard(change.environment_id, change.version)
        with self._lock:
            targets = list(self._subscriptions.get(change.environment_id, ()))
        for subscription in targets:
            if loop is None or subscription.loop is loop:
                subscription.notify(change.version)

    def resync(self, loop: asyncio.AbstractEventLoop) -> None:
        """Tell every stream of ``loop`` to re-read its version (notices may have been lost)."""
        with self._lock:
            targets = [s for group in self._subscriptions.values() for s in group if s.loop is loop]
        for subscription in targets:
            subscription.notify(RESYNC)

    def count(self) -> int:
        """How many streams this process serves."""
        with self._lock:
            return sum(len(group) for group in self._subscriptions.values())

    @asynccontextmanager
    async def subscribe(self, environment_id: int) -> AsyncIterator[Subscription]:
        """Receive the changes of an environment while the context is open."""
        loop = asyncio.get_running_loop()
        subscription = Subscription(environment_id, loop)
        url = conf.redis_url()
        listener = None
        with self._lock:
            self._subscriptions.setdefault(environment_id, set()).add(subscription)
            self._per_loop[loop] = self._per_loop.get(loop, 0) + 1
            if url:
                listener = self._listeners.get(loop)
                if listener is None or listener.url != url or listener.task.done():
                    if listener is not None:
                        listener.task.cancel()
                    listener = self._listeners[loop] = _Listener(self, url, loop)
        try:
            if listener is not None and not listener.ready.is_set():
                with suppress(TimeoutError):  # Redis is slow or down: go on, the stream still works
                    await asyncio.wait_for(listener.ready.wait(), READY_TIMEOUT)
            yield subscription
        finally:
            self._unsubscribe(subscription)

    def _unsubscribe(self, subscription: Subscription) -> None:
        loop = subscription.loop
        stopped: _Listener | None = None
        with self._lock:
            group = self._subscriptions.get(subscription.environment_id, set())
            group.discard(subscription)
            if not group:
                self._subscriptions.pop(subscription.environment_id, None)
            remaining = self._per_loop.get(loop, 1) - 1
            if remaining > 0:
                self._per_loop[loop] = remaining
            else:
                self._per_loop.pop(loop, None)
                stopped = self._listeners.pop(loop, None)
        if stopped is not None:
            stopped.task.cancel()


broker = Broker()


def subscribe(environment_id: int) -> AbstractAsyncContextManager[Subscription]:
    """Receive an environment's changes while the context is open (:meth:`Broker.subscribe`)."""
    return broker.subscribe(environment_id)
