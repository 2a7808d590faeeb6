"""Ruleset change notices to streams, in process and through Redis pub/sub."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator

import pytest
import redis
from django.test.utils import override_settings

from flags.delivery import pubsub
from flags.stream import subscriptions

WAIT = 5.0


@pytest.fixture
def in_process() -> Iterator[None]:
    with override_settings(REDIS_URL=""):
        yield


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = os.environ["REDIS_URL"]
    with override_settings(REDIS_URL=url):
        yield url


def run[T](coroutine: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coroutine(), WAIT)

    return asyncio.run(bounded())


def test_message_encoding() -> None:
    change = pubsub.RulesetChanged(3, 7)
    assert json.loads(change.encode()) == {"environment": 3, "version": 7}
    assert pubsub.RulesetChanged.decode(change.encode()) == change
    assert pubsub.RulesetChanged.decode(b'{"environment": 3, "version": 7}') == change
    for bad in (b"nope", b"[]", b'{"environment": 3}', b'{"environment": "3", "version": 7}'):
        assert pubsub.RulesetChanged.decode(bad) is None


def test_in_process_delivery(in_process: None) -> None:
    async def scenario() -> list[subscriptions.Notice]:
        async with subscriptions.subscribe(1) as one, subscriptions.subscribe(2) as two:
            assert subscriptions.broker.count() == 2
            # From another thread, as a WSGI worker's commit hook would.
            thread = threading.Thread(target=pubsub.publish_ruleset_changed, args=(1, 5))
            thread.start()
            received = [await one.wait()]
            thread.join(WAIT)
            pubsub.publish_ruleset_changed(2, 9)
            received.append(await two.wait())
            # Notices coalesce: a slow stream only gets the newest version.
            for version in (10, 12, 11):
                pubsub.publish_ruleset_changed(1, version)
            received.append(await one.wait())
            return received

    assert run(scenario) == [5, 9, 12]
    assert subscriptions.broker.count() == 0


def test_notices_for_other_environments_are_not_delivered(in_process: None) -> None:
    async def scenario() -> None:
        async with subscriptions.subscribe(1) as one:
            pubsub.publish_ruleset_changed(2, 3)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(one.wait(), 0.1)

    run(scenario)


def test_resync_notice(in_process: None) -> None:
    async def scenario() -> subscriptions.Notice:
        async with subscriptions.subscribe(1) as one:
            pubsub.publish_ruleset_changed(1, 4)
            subscriptions.broker.resync(asyncio.get_running_loop())
            return await one.wait()

    assert run(scenario) is subscriptions.RESYNC


@pytest.mark.requires_redis
def test_delivery_through_redis(redis_url: str) -> None:
    other_process = redis.Redis.from_url(redis_url, socket_timeout=WAIT)

    def subscribers() -> int:
        # This process's subscriptions (other processes may share the Redis).
        clients = other_process.client_list(_type="pubsub")
        return sum(1 for entry in clients if entry["name"] == pubsub.subscriber_name())

    async def scenario() -> list[subscriptions.Notice]:
        async with (
            subscriptions.subscribe(1) as one,
            subscriptions.subscribe(1) as same,
            subscriptions.subscribe(2),
        ):
            assert subscribers() == 1  # one subscription for the process, not one per stream
            await asyncio.to_thread(pubsub.publish_ruleset_changed, 1, 8)
            received = [await one.wait(), await same.wait()]
            # From another process, and something that is not a notice (ignored).
            other_process.publish(pubsub.channel(pubsub.RULESET_CHANNEL), b"garbage")
            other_process.publish(
                pubsub.channel(pubsub.RULESET_CHANNEL), pubsub.RulesetChanged(1, 9).encode()
            )
            received.append(await one.wait())
            return received

    try:
        assert run(scenario) == [8, 8, 9]
        # The last stream gone, the subscription goes too.
        for _ in range(100):
            if subscribers() == 0:
                break
            threading.Event().wait(0.02)
        assert subscribers() == 0
    finally:
        other_process.close()


def test_publish_without_a_reachable_redis_delivers_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(subscriptions, "READY_TIMEOUT", 0.1)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    # Nothing listens on the port: publishing fails fast and the local streams still hear it.
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{port}/0"):

        async def scenario() -> subscriptions.Notice:
            loop = asyncio.get_running_loop()
            async with subscriptions.subscribe(1) as one:
                await loop.run_in_executor(None, pubsub.publish_ruleset_changed, 1, 6)
                return await one.wait()

        assert run(scenario) == 6
