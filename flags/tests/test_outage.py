"""Two web nodes and two stream nodes over one PostgreSQL and one Redis, cut as in an outage.

The nodes run as an operator runs them (gunicorn and uvicorn child processes, production
settings, the database pool), and reach PostgreSQL and Redis through loopback fault proxies that
the test severs: sockets closed, new connections refused.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connections

from accounts.models import ApiKey, User
from flags import services
from flags.models import Environment, Project
from flagship.faults import FaultProxy, wait_until

from .cluster import Cluster, Subscriber, cluster, node_environment, request
from .evaluation_data import build_flags, issue, issue_admin

pytestmark = [pytest.mark.requires_postgres, pytest.mark.requires_redis]

EVALUATE = "/api/v1/evaluate"
OFREP_ONE = "/ofrep/v1/evaluate/flags/banner-text"
OFREP_BULK = "/ofrep/v1/evaluate/flags"
RULESET = "/api/v1/ruleset"
TOGGLE = "/api/v1/projects/demo/flags/banner-text/environments/staging/toggle/"


@pytest.fixture
def shop(transactional_db: None) -> tuple[Project, Environment, str, str]:
    """Project ``demo`` with the evaluation flags in staging, a server key and an admin token."""
    administrator = User.objects.create_superuser("root", "root@example.com", "x-not-used-x")
    project = services.project_create(key="demo", name="Demo")
    staging = project.environments.get(key="staging")
    build_flags(project, staging)
    return project, staging, issue(staging, ApiKey.Kind.SERVER), issue_admin(administrator)


@pytest.fixture
def proxies() -> Iterator[tuple[FaultProxy, FaultProxy]]:
    """Fault proxies in front of the test database's server and of Redis."""
    database = connections["default"].settings_dict
    redis = urlsplit(str(settings.REDIS_URL))
    with (
        FaultProxy(database.get("HOST") or "127.0.0.1", int(database.get("PORT") or 5432)) as pg,
        FaultProxy(redis.hostname or "127.0.0.1", redis.port or 6379) as cache,
    ):
        yield pg, cache


@pytest.fixture
def nodes(tmp_path: Path, proxies: tuple[FaultProxy, FaultProxy], shop: Any) -> Iterator[Cluster]:
    """Two gunicorn nodes and two uvicorn stream nodes, all through the proxies."""
    pg, cache = proxies
    database = connections["default"].settings_dict
    user = database.get("USER") or "postgres"
    env = node_environment(
        f"postgres://{user}@127.0.0.1:{pg.port}/{database['NAME']}",
        f"redis://127.0.0.1:{cache.port}/{urlsplit(str(settings.REDIS_URL)).path.strip('/') or 0}",
        f"flagship-outage-{uuid.uuid4().hex[:12]}",
    )
    with cluster(tmp_path) as running:
        for _ in range(2):
            running.start_web(env)
            running.start_stream(env)
        running.wait_ready()
        try:
            yield running
        except BaseException:
            print(running.tail())  # noqa: T201  # shown with the failure
            raise


def evaluate(port: int, secret: str, path: str = EVALUATE) -> tuple[int, dict[str, str], Any]:
    """POST an evaluation for a German user (GET the ruleset); status, headers and JSON body."""
    if path == RULESET:
        status, headers, body = request(port, "GET", path, None, {"X-API-Key": secret})
        return status, headers, json.loads(body) if body else None
    status, headers, body = request(
        port,
        "POST",
        path,
        {"context": {"targetingKey": "u-1", "country": "DE"}},
        {"X-API-Key": secret},
    )
    return status, headers, json.loads(body) if body else None


def banner(port: int, secret: str) -> Any:
    """The value ``banner-text`` has on a node."""
    status, _headers, body = evaluate(port, secret, OFREP_ONE)
    assert status == 200, body
    return body["value"]


def toggle(port: int, admin: str, *, enabled: bool) -> None:
    """Switch ``banner-text`` in staging through a node's API."""
    status, _headers, body = request(
        port, "POST", TOGGLE, {"enabled": enabled}, {"Authorization": f"Bearer {admin}"}
    )
    assert status == 200, body


def load(
    ports: list[int], secret: str, seconds: float, workers: int = 8
) -> list[tuple[int, float, str]]:
    """Evaluate on every node from ``workers`` threads: (status, latency, degraded header)."""
    results: list[tuple[int, float, str]] = []
    lock = threading.Lock()
    paths = (EVALUATE, OFREP_ONE, OFREP_BULK, RULESET)
    stop = time.monotonic() + seconds

    def run(number: int) -> None:
        count = 0
        while time.monotonic() < stop:
            port, path = ports[(number + count) % len(ports)], paths[count % len(paths)]
            count += 1
            started = time.monotonic()
            try:
                status, headers, _body = evaluate(port, secret, path)
            except OSError:
                status, headers = 0, {}
            with lock:
                results.append(
                    (status, time.monotonic() - started, headers.get("FlagShip-Degraded", ""))
                )

    threads = [threading.Thread(target=run, args=(number,)) for number in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def readyz(port: int) -> tuple[int, float, dict[str, Any]]:
    """``GET /readyz``: status, seconds taken and body."""
    started = time.monotonic()
    status, _headers, body = request(port, "GET", "/readyz", timeout=5)
    return status, time.monotonic() - started, json.loads(body)


def test_two_nodes__change_through_one__served_and_pushed_by_all(
    nodes: Cluster, shop: tuple[Project, Environment, str, str]
) -> None:
    _project, _staging, secret, admin = shop
    first, second = nodes.web
    subscribers = [Subscriber(port, secret) for port in nodes.streams]
    assert wait_until(lambda: all(s.versions for s in subscribers)), "no initial event"
    before = max(s.versions[-1] for s in subscribers)
    assert banner(second, secret) == "Winter sale!"

    toggle(first, admin, enabled=False)

    assert wait_until(lambda: banner(second, secret) == ""), "the other node serves the old value"
    assert wait_until(lambda: all(s.versions[-1] > before for s in subscribers)), [
        s.versions for s in subscribers
    ]
    for subscriber in subscribers:
        subscriber.close()


def test_both_cut_under_load__every_warm_node_answers_from_memory__then_recovers(
    nodes: Cluster,
    proxies: tuple[FaultProxy, FaultProxy],
    shop: tuple[Project, Environment, str, str],
) -> None:
    pg, cache = proxies
    _project, staging, secret, admin = shop
    subscribers = [Subscriber(port, secret) for port in nodes.streams]
    assert wait_until(lambda: all(s.versions for s in subscribers))
    warm = load(nodes.web, secret, 1.0)  # every node compiles the ruleset and learns the key
    assert {status for status, _, _ in warm} == {200}
    up = statistics.quantiles([latency for _, latency, _ in warm], n=100)[98]

    # Both stalled (a partition: connections open, nothing answers): the probes still answer in
    # time, and warm nodes answer from memory.
    pg.stall()
    cache.stall()
    for port in nodes.web:
        status, seconds, body = readyz(port)
        assert (status, body["status"]) == (503, "degraded"), body
        assert seconds < 1.0
        assert {"database", "redis"} <= set(body["failing"]), body
    stalled = load(nodes.web, secret, 0.5)
    assert {status for status, _, _ in stalled} == {200}

    # Both cut: nothing waits on the pool (DATABASE_POOL_TIMEOUT is 10 s) or on Redis.
    pg.sever()
    cache.sever()
    cut = load(nodes.web, secret, 3.0)
    statuses = [status for status, _, _ in cut]
    assert statuses.count(200) == len(cut), {s: statuses.count(s) for s in set(statuses)}
    assert max(latency for _, latency, _ in cut) < 1.0, sorted(late for _, late, _ in cut)[-5:]
    assert cut[-1][2] == "database,redis"  # marked once the breakers are open
    for port in nodes.web:
        status, seconds, body = readyz(port)
        assert status == 503
        assert seconds < 1.0
        assert set(body["failing"]) == {"database", "migrations", "redis"}, body
    heartbeats = [s.heartbeats for s in subscribers]
    time.sleep(1.2)  # heartbeats every 0.5 s keep the streams open
    assert all(
        s.heartbeats > h and not s.closed for s, h in zip(subscribers, heartbeats, strict=True)
    )

    # PostgreSQL back, Redis still cut: a change through one node is served by the other.
    pg.restore()
    assert wait_until(lambda: readyz(nodes.web[0])[2]["checks"]["database"] == "ok")
    toggle(nodes.web[0], admin, enabled=False)
    version = Environment.objects.get(pk=staging.pk).ruleset_version
    assert wait_until(lambda: banner(nodes.web[1], secret) == "")

    # Redis back: the change made meanwhile reaches every subscriber, without a restart.
    cache.restore()
    assert wait_until(lambda: all(s.versions and s.versions[-1] >= version for s in subscribers)), [
        s.versions for s in subscribers
    ]
    assert wait_until(lambda: all(readyz(port)[0] == 200 for port in nodes.web))
    after = load(nodes.web, secret, 1.0)
    assert {status for status, _, _ in after} == {200}
    assert not any(marked for _, _, marked in after)
    assert up < 1.0
    for subscriber in subscribers:
        subscriber.close()
