"""Each open stream's subscription to its environment's changes, and the broker that fills them.

Streams are coroutines on an ASGI server's event loop; changes arrive in other threads: the
process's pub/sub listener (``flags.delivery.pubsub``) or, without Redis, the thread that
committed. The :class:`Broker` hands each change to the subscriptions of its environment, once
per event loop (``call_soon_threadsafe``, then :meth:`Subscription._deliver` for each on the loop;
a stream that can write to its connection directly does so there, ``flags.stream.direct``,
without waking its coroutine). It is told by the
process's version receiver (``flags.delivery.versions``), after the process's own memory has the
new version, so a client that reacts to an event by asking this same process gets that version.

Notices are notify-only and coalesce: a stream only needs the newest version of its environment,
so a slow stream never queues more than one pending version. When the process's subscription is
confirmed again after a loss, every stream is told to re-read its version (:data:`RESYNC`):
notices may have been missed meanwhile. When FlagShip's own flags change
(``flags.capabilities``), every stream is told to check whether it may stay open
(:data:`RECHECK`).

An open stream holds the process's listener (``pubsub.hold_listener``), so a process that only
serves streams subscribes while it has any; a new stream first waits, up to ``READY_TIMEOUT``, for
the subscription to be confirmed, so that no change committed after it read its version is missed
(then it goes on without: Redis is slow or down, and the stream still works).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress

from flags import conf
from flags.delivery import pubsub
from flagship import metrics

# How long a new stream waits for the process's Redis subscription before going on without it.
READY_TIMEOUT = 2.0
RESYNC = None  # what a subscription yields when notices may have been missed


class Recheck:
    """The type of :data:`RECHECK`."""

    def __repr__(self) -> str:
        return "RECHECK"


RECHECK = Recheck()  # what a subscription yields when FlagShip's own flags changed
Notice = int | Recheck | None


class Subscription:
    """One stream's mailbox for its environment: the newest announced version, or a resync."""

    def __init__(self, environment_id: int, loop: asyncio.AbstractEventLoop) -> None:
        self.environment_id = environment_id
        self.loop = loop
        self._latest: int | None = None
        self._resync = False
        self._recheck = False
        self._signal = asyncio.Event()
        # Set by a stream that can write a version to its connection at once (the view's
        # direct writer): called on the loop, ``False`` when it cannot (the stream is woken).
        self.deliver_now: Callable[[int], bool] | None = None

    def notify(self, version: Notice) -> None:
        """Deliver a version (``None``: resync; ``RECHECK``: check capabilities) from any thread."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._deliver(version)
            return
        with suppress(RuntimeError):  # the loop has closed: the stream is gone
            self.loop.call_soon_threadsafe(self._deliver, version)

    def _deliver(self, version: Notice) -> None:
        if (
            self.deliver_now is not None
            and type(version) is int
            and self._latest is None
            and not self._resync
            and not self._recheck
            and self.deliver_now(version)
        ):
            return  # written already: the stream's coroutine need not wake
        if isinstance(version, Recheck):
            self._recheck = True
        elif version is None:
            self._resync = True
        elif self._latest is None or version > self._latest:
            self._latest = version
        self._signal.set()

    async def wait(self) -> Notice:
        """``RECHECK`` first, else the newest version announced since the last call, or ``RESYNC``.

        A recheck leaves a pending version or resync for the next call.
        """
        await self._signal.wait()
        if self._recheck:
            self._recheck = False
            if not self._resync and self._latest is None:
                self._signal.clear()
            return RECHECK
        self._signal.clear()
        if self._resync:
            self._resync = False
            self._latest = None
            return RESYNC
        latest, self._latest = self._latest, None
        return latest


def _deliver_all(subscriptions: list[Subscription], version: Notice) -> None:
    for subscription in subscriptions:
        subscription._deliver(version)  # the broker's half of the mailbox


def _notify_all(subscriptions: list[Subscription], version: Notice) -> None:
    """:meth:`Subscription.notify` for many: one hand-over per event loop, not per stream.

    A stream server holds thousands of streams on one loop; waking the loop once per change
    (``call_soon_threadsafe``) rather than once per stream keeps the listener thread's share of
    the fan-out constant (bench/server/stream_scale.py).
    """
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = {}
    for subscription in subscriptions:
        by_loop.setdefault(subscription.loop, []).append(subscription)
    for loop, group in by_loop.items():
        if loop is running:
            _deliver_all(group, version)
            continue
        with suppress(RuntimeError):  # the loop has closed: its streams are gone
            loop.call_soon_threadsafe(_deliver_all, group, version)


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


class Broker:
    """The streams of this process, by environment, and whether its subscription is confirmed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: dict[int, set[Subscription]] = {}
        self._confirmed = False
        self._waiting: set[asyncio.Future[None]] = set()

    def dispatch(self, change: pubsub.RulesetChanged) -> None:
        """Hand a change to the streams of its environment."""
        with self._lock:
            targets = list(self._subscriptions.get(change.environment_id, ()))
        _notify_all(targets, change.version)

    def resync(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Tell every stream (of ``loop``, if given) to re-read its version."""
        with self._lock:
            targets = [s for group in self._subscriptions.values() for s in group]
        _notify_all([s for s in targets if loop is None or s.loop is loop], RESYNC)

    def recheck(self) -> None:
        """Tell every stream to check whether its capability is still on (``RECHECK``)."""
        with self._lock:
            targets = [s for group in self._subscriptions.values() for s in group]
        _notify_all(targets, RECHECK)

    def subscription_confirmed(self, again: bool) -> None:
        """The process's subscription is confirmed: wake new streams; resync all ``again``."""
        with self._lock:
            self._confirmed = True
            waiting, self._waiting = self._waiting, set()
        for ready in waiting:
            with suppress(RuntimeError):  # its loop has closed: the stream is gone
                ready.get_loop().call_soon_threadsafe(_wake, ready)
        if again:
            self.resync()

    def subscription_lost(self) -> None:
        """The process's subscription is lost: new streams wait for it again."""
        with self._lock:
            self._confirmed = False

    def count(self) -> int:
        """How many streams this process serves."""
        with self._lock:
            return sum(len(group) for group in self._subscriptions.values())

    @asynccontextmanager
    async def subscribe(self, environment_id: int) -> AsyncIterator[Subscription]:
        """Receive the changes of an environment while the context is open."""
        loop = asyncio.get_running_loop()
        subscription = Subscription(environment_id, loop)
        with self._lock:
            self._subscriptions.setdefault(environment_id, set()).add(subscription)
        metrics.stream_subscribers.inc()
        pubsub.hold_listener()
        try:
            if conf.redis_url():
                await self._confirmation(loop)
            yield subscription
        finally:
            with self._lock:
                group = self._subscriptions.get(environment_id, set())
                group.discard(subscription)
                if not group:
                    self._subscriptions.pop(environment_id, None)
            metrics.stream_subscribers.dec()
            pubsub.release_listener()

    async def _confirmation(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait (at most ``READY_TIMEOUT``) until the process's subscription is confirmed."""
        with self._lock:
            if self._confirmed:
                return
            ready: asyncio.Future[None] = loop.create_future()
            self._waiting.add(ready)
        try:
            with suppress(TimeoutError):  # Redis is slow or down: go on, the stream still works
                await asyncio.wait_for(ready, READY_TIMEOUT)
        finally:
            with self._lock:
                self._waiting.discard(ready)


broker = Broker()


def subscribe(environment_id: int) -> AbstractAsyncContextManager[Subscription]:
    """Receive an environment's changes while the context is open (:meth:`Broker.subscribe`)."""
    return broker.subscribe(environment_id)
