"""Server-side evaluation counts: REST and OFREP, through process memory and Redis to PostgreSQL.

The counts are flushed from the process (``counting.flush``, due every
``FLAGSHIP_COUNT_FLUSH_SECONDS``; the test suite flushes when a test asks) and moved from Redis by
the worker's ``evaluations.store`` job, which these tests run as the worker runs it. Redis is the
real one at ``REDIS_URL`` (in a namespace of its own per test), cut for real with a fault proxy.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings

from accounts.models import ApiKey, User
from flags import services, worker
from flags.delivery.compiled import compiled_ruleset
from flags.evaluation import counting
from flags.models import Environment, FlagEvaluationCount, Project
from flagship import breakers
from flagship.faults import FaultProxy, wait_until
from flagship.processes import Processes

from .caching import caching, call, redis_url
from .evaluation_data import build_flags, issue
from .test_sdk_evaluations import URL as SDK_URL
from .test_sdk_evaluations import iso, this_hour
from .test_webhook_workers import start_worker

EVALUATE = "/api/v1/evaluate"
OFREP_BULK = "/ofrep/v1/evaluate/flags"


def stored() -> dict[tuple[str, str, str], int]:
    """Every stored count by (environment key, flag key, variant), over all hours."""
    totals: dict[tuple[str, str, str], int] = {}
    for row in FlagEvaluationCount.objects.select_related("environment", "flag"):
        key = (row.environment.key, row.flag.key, row.variant)
        totals[key] = totals.get(key, 0) + row.count
    return totals


def store_job() -> worker.Job:
    """The worker's periodic job that moves the counts from Redis into the database."""
    return next(job for job in worker.PERIODIC if job.name == "evaluations.store")


def evaluate_everywhere(client: Client, secret: str) -> None:
    """REST bulk and single, OFREP bulk and single; a ruleset download, which counts nothing."""
    for url in (EVALUATE, f"{EVALUATE}/banner-text", OFREP_BULK, f"{OFREP_BULK}/discount"):
        assert call(client, "post", url, secret).status_code == 200, url
    assert call(client, "get", "/api/v1/ruleset", secret).status_code == 200


@pytest.fixture
def shop(project: Project, staging: Environment) -> str:
    """The evaluation flags in staging; a server key's secret."""
    build_flags(project, staging)
    return issue(staging, ApiKey.Kind.SERVER)


@pytest.fixture
def redis_proxy() -> Iterator[FaultProxy]:
    """A fault proxy in front of the test Redis."""
    parts = urlsplit(redis_url())
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as proxy:
        yield proxy


def hash_fields() -> dict[str, int]:
    """The Redis hash of counts not yet stored, by field."""
    target = counting._redis()  # the module's own client and hash name
    assert target is not None
    client, name = target
    return {field.decode(): int(value) for field, value in client.hgetall(name).items()}


# --- Through Redis and the worker ---------------------------------------------------------------
@pytest.mark.requires_redis
def test_rest_and_ofrep__twice__reach_postgres_through_redis_and_the_worker_job(
    client: Client, staging: Environment, shop: str
) -> None:
    # Given the shared caches on Redis, as in production
    with caching(redis_url()):
        # When every evaluation endpoint is called twice (cold: DRF's path; warm: the fast one)
        started = time.time()
        for _ in range(2):
            evaluate_everywhere(client, shop)
        # Then the counts are in the process only, until it flushes them into Redis
        assert FlagEvaluationCount.objects.count() == 0
        assert counting.flush() > 0
        assert counting.pending() == {}
        hours_seen = {int(moment) // 3600 * 3600 for moment in (started, time.time())}  # hour end
        fields = hash_fields()
        assert sum(fields.get(f"{staging.pk}:{h}:banner-text:sale", 0) for h in hours_seen) == 6
        # When the worker's job runs
        job = store_job()
        assert job.seconds == counting.STORE_SECONDS
        job.run()
        # Then PostgreSQL holds them (bulk, single and OFREP alike; not the ruleset download)
        totals = stored()
        assert totals[("staging", "banner-text", "sale")] == 6  # REST bulk+one, OFREP bulk
        assert totals[("staging", "discount", "half")] == 6  # REST bulk, OFREP bulk+one
        assert totals[("staging", "new-checkout", "off")] == 4  # the bulk answers only
        assert totals[("staging", "legacy", "off")] == 4
        hours = set(FlagEvaluationCount.objects.values_list("hour", flat=True))
        assert hours <= {datetime.fromtimestamp(hour, UTC) for hour in hours_seen}
        # And Redis is emptied, so a second run adds nothing
        assert hash_fields() == {}
        job.run()
        assert stored() == totals


@pytest.mark.requires_redis
def test_sdk_report_and_server_evaluations__add_up_in_one_row(
    client: Client, staging: Environment, shop: str
) -> None:
    # Given the shared caches on Redis
    with caching(redis_url()):
        # When an SDK reports 5 evaluations of banner-text/sale this hour and the server
        # evaluates it once
        report = {"flag": "banner-text", "variant": "sale", "hour": iso(this_hour()), "count": 5}
        body = {"counts": [report]}
        response = client.post(
            SDK_URL, json.dumps(body), content_type="application/json", headers={"X-API-Key": shop}
        )
        assert response.status_code == 202, response.content
        call(client, "post", f"{EVALUATE}/banner-text", shop)
        counting.flush()
        store_job().run()
    # Then one row holds both, per flag, environment, variant and hour
    row = FlagEvaluationCount.objects.get(flag__key="banner-text")
    assert (row.environment_id, row.variant, row.hour, row.count) == (
        staging.pk,
        "sale",
        this_hour(),
        6,
    )


@pytest.mark.requires_redis
@pytest.mark.requires_postgres
def test_run_worker_process__moves_the_counts_from_redis_into_postgres(
    transactional_db: None, client: Client, processes: Processes
) -> None:
    # Given committed flags, and evaluations flushed into Redis (in a namespace of their own)
    project = services.project_create(key="demo", name="Demo")
    staging = project.environments.get(key="staging")
    build_flags(project, staging)
    secret = issue(staging, ApiKey.Kind.SERVER)
    with caching(redis_url()):
        call(client, "post", f"{EVALUATE}/banner-text", secret)
        call(client, "post", f"{OFREP_BULK}/banner-text", secret)
        counting.flush()
        prefix = str(settings.CACHES["flagship"]["KEY_PREFIX"])
        assert sum(hash_fields().values()) == 2
        # When a real `manage.py run_worker` runs with the same Redis and key prefix
        start_worker(
            processes, "worker", concurrency=1, REDIS_URL=redis_url(), CACHE_KEY_PREFIX=prefix
        )
        # Then its evaluations.store job moves them into PostgreSQL, and empties the hash
        assert wait_until(lambda: stored() == {("staging", "banner-text", "sale"): 2}, timeout=30)
        assert hash_fields() == {}


# --- Without Redis ------------------------------------------------------------------------------
def test_without_redis__a_due_flush_stores_in_the_database_from_the_request(
    client: Client, shop: str
) -> None:
    # Given no Redis (the embedded development mode) and a flush due at every request
    with caching(None, REDIS_URL="", FLAGSHIP_COUNT_FLUSH_SECONDS=0.000_001):
        # When banner-text is evaluated twice
        call(client, "post", f"{EVALUATE}/banner-text", shop)
        call(client, "post", f"{EVALUATE}/banner-text", shop)
        # Then the requests stored the counts themselves
        assert counting.pending() == {}
    assert stored() == {("staging", "banner-text", "sale"): 2}


def test_counting_off__nothing_is_counted(client: Client, shop: str) -> None:
    # Given counting turned off
    with caching(None, REDIS_URL="", FLAGSHIP_COUNT_EVALUATIONS=False):
        # When flags are evaluated everywhere
        evaluate_everywhere(client, shop)
        # Then nothing is held or stored
        assert counting.pending() == {}
        assert counting.flush() == 0
    assert stored() == {}


def test_deleted_flag__its_pending_counts_are_dropped_on_store(
    client: Client, project: Project, shop: str
) -> None:
    # Given counts of banner-text held in memory, without Redis
    with caching(None, REDIS_URL=""):
        call(client, "post", f"{EVALUATE}/banner-text", shop)
        call(client, "post", f"{EVALUATE}/discount", shop)
        # When banner-text is deleted before the flush
        project.flags.filter(key="banner-text").delete()
        counting.flush()
    # Then only the flag still there is stored
    assert stored() == {("staging", "discount", "half"): 1}


# --- Redis down ---------------------------------------------------------------------------------
@pytest.mark.requires_redis
def test_redis_cut_while_counting__nothing_lost_once_it_is_back(
    client: Client, shop: str, redis_proxy: FaultProxy
) -> None:
    # Given the shared caches on Redis through a fault proxy, and counts of 1 evaluation
    with caching(redis_proxy.url(redis_url())):
        call(client, "post", f"{EVALUATE}/banner-text", shop)
        # When Redis is cut, the flush fails and 2 more evaluations are answered meanwhile
        redis_proxy.sever()
        assert counting.flush() == 0
        assert not breakers.redis_breaker.available()
        call(client, "post", f"{EVALUATE}/banner-text", shop)
        call(client, "post", f"{EVALUATE}/banner-text", shop)
        assert counting.flush() == 0  # breaker open: not even tried
        assert sum(counting.pending().values()) == 3
        assert store_job().run() == 0  # the worker waits too
        # When Redis is back
        redis_proxy.restore()
        assert wait_until(breakers.redis_breaker.available)
        assert counting.flush() == 1
        store_job().run()
    # Then every evaluation is stored, once
    assert stored() == {("staging", "banner-text", "sale"): 3}


@pytest.mark.requires_redis
def test_redis_cut__pending_counts_bounded__oldest_hour_dropped_and_logged(
    staging: Environment, shop: str, redis_proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    # Given Redis cut, and a process that keeps at most 2 distinct counts
    compiled = compiled_ruleset(staging)
    results = [compiled.ruleset.evaluate(key, {}) for key in ("discount", "theme")]
    with caching(redis_proxy.url(redis_url()), FLAGSHIP_COUNT_MAX_PENDING=2):
        redis_proxy.sever()
        # When 2 counts of 3 hours ago, then 2 of now, are held and the flushes fail
        now = time.time()  # one moment: a test across an hour's end still names one hour
        counting.counted(compiled, results, at=now - 3 * 3600)
        counting.flush()
        counting.counted(compiled, results, at=now)
        with caplog.at_level(logging.WARNING, logger="flags.evaluation.counting"):
            counting.flush()
        # Then the newest 2 are kept, and the dropped ones are logged
        hour = int(now) // 3600 * 3600
        assert counting.pending() == {
            (staging.pk, "discount", "half", hour): 1,
            (staging.pk, "theme", "dark", hour): 1,
        }
        dropped = [r for r in caplog.records if r.getMessage() == "evaluation_counts.dropped"]
        assert [(r.evaluations, r.counts) for r in dropped] == [(2, 2)]  # type: ignore[attr-defined]


# --- Shown to every role ------------------------------------------------------------------------
@pytest.mark.requires_redis
def test_counts__shown_to_a_viewer__in_the_api_and_the_admin(
    client: Client, viewer: User, staging: Environment, shop: str
) -> None:
    # Given banner-text evaluated 3 times over OFREP and REST, stored by the worker
    with caching(redis_url()):
        call(client, "post", f"{EVALUATE}/banner-text", shop)
        call(client, "post", OFREP_BULK, shop)
        call(client, "post", f"{OFREP_BULK}/banner-text", shop)
        counting.flush()
        store_job().run()
    hour = iso(this_hour())
    client.force_login(viewer)
    # When a Viewer reads the flag in the API
    flag = client.get("/api/v1/projects/demo/flags/banner-text/").json()
    # Then it shows when it was last evaluated, overall and in staging only
    assert flag["last_evaluated"] == hour
    assert flag["environments"]["staging"]["last_evaluated"] == hour
    assert flag["environments"]["production"]["last_evaluated"] is None
    # When the Viewer opens the flag's admin page and the counts' list
    flag_pk = staging.project.flags.get(key="banner-text").pk
    page = client.get(f"/admin/flags/flag/{flag_pk}/change/")
    counts = client.get("/admin/flags/flagevaluationcount/?q=banner-text")
    # Then both show the counts
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="last-evaluated-staging"' in html
    assert f"{this_hour():%Y-%m-%d %H:00} UTC" in html
    assert 'data-testid="evaluations-7d-staging">3<' in html
    assert counts.status_code == 200
    assert ">3<" in counts.content.decode()


def test_shared_cache_is_not_redis__counts_go_to_the_database(client: Client, shop: str) -> None:
    # Given REDIS_URL set but the shared cache a local one (a misconfiguration FlagShip survives)
    with caching(None, REDIS_URL="redis://127.0.0.1:1/0"):
        call(client, "post", f"{EVALUATE}/banner-text", shop)
        # When the process flushes
        flushed = counting.flush()
    # Then the counts went to the database
    assert flushed == 1
    assert stored() == {("staging", "banner-text", "sale"): 1}


@override_settings(FLAGSHIP_COUNT_EVALUATIONS=True)
def test_ruleset_download__counts_nothing(client: Client, shop: str) -> None:
    # Given a server key
    # When the ruleset is downloaded twice (cold and warm)
    call(client, "get", "/api/v1/ruleset", shop)
    call(client, "get", "/api/v1/ruleset", shop)
    # Then nothing is counted
    assert counting.pending() == {}
