"""Prometheus metrics: ``/metrics`` protected, FlagShip's series counted, summed across workers.

In this process prometheus_client keeps values in memory (no ``PROMETHEUS_MULTIPROC_DIR``) and the
values live for the whole test session, so each test reads a series before and after what it
does and compares the difference. ``/metrics`` itself flushes this process's pending evaluation
counts, so a scrape right after a request sees it. The last test runs gunicorn with two workers
in multiprocess mode, as operators run it.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.test import Client, override_settings
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import ApiKey
from flags import services
from flags.delivery import compiled
from flags.models import Environment, Flag, Project, ScheduledStep, WebhookDelivery
from flags.services import StepSpec, run_due
from flags.stream.subscriptions import broker
from flags.tests.caching import caching
from flags.tests.cluster import Subscriber, cluster, node_environment, request
from flags.tests.evaluation_data import build_flags, issue
from flags.tests.receiver import Receiver
from flags.webhooks import sending
from flagship import metrics

TOKEN = "metrics-t0ken-for-tests"  # noqa: S105  # a test value
EVALUATE = "/api/v1/evaluate"
OFREP_BULK = "/ofrep/v1/evaluate/flags"
OFREP_ONE = "/ofrep/v1/evaluate/flags/banner-text"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str) -> float:
    """The sum of every sample of ``name`` (all labels)."""
    return sum(number for (sample, _labels), number in samples.items() if sample == name)


def scrape(client: Client) -> Samples:
    """``GET /metrics`` with the token; its samples."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


@pytest.fixture
def token() -> Iterator[None]:
    """``/metrics`` open to the bearer token."""
    with override_settings(FLAGSHIP_METRICS_TOKEN=TOKEN):
        yield


@pytest.fixture
def project(db: None) -> Project:
    """Project ``demo`` (development, staging, production)."""
    return services.project_create(key="demo", name="Demo")


@pytest.fixture
def staging(project: Project) -> Environment:
    """Its staging environment."""
    return project.environments.get(key="staging")


@pytest.fixture
def boolean_flag(project: Project) -> Flag:
    """A boolean flag ``new-checkout``, off everywhere."""
    return services.flag_create(project=project, key="new-checkout", name="New checkout")


@pytest.fixture
def secret(project: Project, staging: Environment) -> str:
    """A server key of staging, whose flags are ``evaluation_data.build_flags``'s."""
    build_flags(project, staging)
    return issue(staging, ApiKey.Kind.SERVER)


def evaluate(client: Client, path: str, secret: str) -> Any:
    """POST an evaluation for a German user; its JSON."""
    response = client.post(
        path,
        data={"context": {"targetingKey": "u-1", "country": "DE"}},
        content_type="application/json",
        headers={"X-API-Key": secret},
    )
    assert response.status_code == 200, response.content
    return response.json()


# --- Access ----------------------------------------------------------------------------------
def test_metrics__token__exposed(client: Client, token: None) -> None:
    # Given a metrics token
    # When /metrics is read with it
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    # Then the exposition holds the HTTP, database, cache and FlagShip series
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for name in (
        "django_http_requests_latency_seconds_by_view_method",
        "django_db_execute_total",
        "django_cache_get_total",
        "flagship_evaluations_total",
        "flagship_ruleset_cache_total",
        "flagship_ruleset_build_seconds",
        "flagship_stream_subscribers",
        "flagship_webhook_deliveries_total",
        "flagship_scheduled_steps_total",
        "flagship_rate_limited_requests_total",
    ):
        assert f"# TYPE {name}" in text, name


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"]
)
def test_metrics__no_or_wrong_token__401_problem(
    client: Client, token: None, authorization: str | None
) -> None:
    # Given a metrics token and a client that is not in any allowed network
    headers = {} if authorization is None else {"Authorization": authorization}

    # When /metrics is read without the right token
    response = client.get("/metrics", headers=headers)

    # Then it is refused with problem details and a Bearer challenge, and shows no metric
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "not_authenticated"
    assert b"flagship_" not in response.content


def test_metrics__allowed_network__exposed_without_token(client: Client) -> None:
    # Given only an allow-list holding the client's network (the test client is 127.0.0.1)
    with override_settings(FLAGSHIP_METRICS_ALLOW=["10.0.0.0/8", "127.0.0.0/8"]):
        # When /metrics is read without a token
        response = client.get("/metrics")

    # Then it is served
    assert response.status_code == 200
    assert b"flagship_evaluations_total" in response.content


def test_metrics__address_not_allowed__403_problem(client: Client) -> None:
    # Given an allow-list that does not hold the client's address, and no token
    with override_settings(FLAGSHIP_METRICS_ALLOW=["10.0.0.0/8", "::1/128"]):
        # When /metrics is read
        response = client.get("/metrics", REMOTE_ADDR="192.0.2.7")

    # Then it is refused
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_metrics__neither_token_nor_allow_list__404(client: Client) -> None:
    # Given no metrics token and no allow-list (the default)
    # When /metrics is read, even from loopback with some token
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    # Then the endpoint does not exist
    assert response.status_code == 404


def test_metrics__turned_off__404_and_evaluations_not_counted(
    client: Client, token: None, secret: str
) -> None:
    # Given metrics turned off
    before = scrape(client)
    with override_settings(FLAGSHIP_METRICS_ENABLED=False):
        # When an evaluation is served and /metrics is read
        evaluate(client, OFREP_ONE, secret)
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    # Then /metrics is 404 and nothing was counted
    assert response.status_code == 404
    after = scrape(client)
    assert total(after, "flagship_evaluations_total") == total(before, "flagship_evaluations_total")


# --- FlagShip's series -----------------------------------------------------------------------
@pytest.mark.parametrize("path", [EVALUATE, OFREP_BULK])
def test_bulk_evaluations__counted_per_flag_and_variant(
    client: Client, token: None, secret: str, path: str
) -> None:
    # Given the metrics before
    before = scrape(client)

    # When the same bulk evaluation is served three times (cold, then from memory)
    for _ in range(3):
        answer = evaluate(client, path, secret)

    # Then each flag's served variant was counted three times, in project demo, staging
    after = scrape(client)
    served = (
        {key: result["variant"] for key, result in answer["flags"].items()}
        if path == EVALUATE
        else {result["key"]: result.get("variant") for result in answer["flags"]}
    )
    assert len(served) == 7
    for flag, variant in served.items():
        labels = {
            "project": "demo",
            "environment": "staging",
            "flag": flag,
            "variant": variant or "",
        }
        counted = value(after, "flagship_evaluations_total", **labels)
        assert counted - value(before, "flagship_evaluations_total", **labels) == 3, flag
    assert total(after, "flagship_evaluations_total") - total(
        before, "flagship_evaluations_total"
    ) == 3 * len(served)


def test_single_evaluations__rest_and_ofrep__counted(
    client: Client, token: None, secret: str
) -> None:
    # Given the metrics before
    labels = {"project": "demo", "environment": "staging", "flag": "banner-text"}
    before = scrape(client)

    # When banner-text is evaluated twice through OFREP and once through the REST API
    evaluate(client, OFREP_ONE, secret)
    ofrep = evaluate(client, OFREP_ONE, secret)
    rest = evaluate(client, f"{EVALUATE}/banner-text", secret)

    # Then three evaluations of its variant were counted
    assert ofrep["variant"] == rest["variant"]
    after = scrape(client)
    series = {**labels, "variant": rest["variant"]}
    assert (
        value(after, "flagship_evaluations_total", **series)
        - value(before, "flagship_evaluations_total", **series)
        == 3
    )


def test_ruleset_download_and_unknown_flag__not_counted(
    client: Client, token: None, secret: str
) -> None:
    # Given the metrics before
    before = scrape(client)

    # When the ruleset is downloaded and an unknown flag is asked for
    assert client.get("/api/v1/ruleset", headers={"X-API-Key": secret}).status_code == 200
    missing = client.post(
        f"{EVALUATE}/no-such-flag", content_type="application/json", headers={"X-API-Key": secret}
    )

    # Then no evaluation was counted
    assert missing.status_code == 404
    after = scrape(client)
    assert total(after, "flagship_evaluations_total") == total(before, "flagship_evaluations_total")


def test_flag_label_off__counted_per_variant_only(client: Client, token: None, secret: str) -> None:
    # Given the flag label dropped
    before = scrape(client)
    with override_settings(FLAGSHIP_METRICS_FLAG_LABEL=False):
        # When banner-text is evaluated
        answer = evaluate(client, OFREP_ONE, secret)
        after = scrape(client)

    # Then its evaluation was counted with an empty flag label
    labels = {"project": "demo", "environment": "staging", "flag": "", "variant": answer["variant"]}
    assert (
        value(after, "flagship_evaluations_total", **labels)
        - value(before, "flagship_evaluations_total", **labels)
        == 1
    )


def test_ruleset_cache__process_miss_then_hits__build_timed(
    client: Client, token: None, secret: str
) -> None:
    # Given no compiled ruleset in this process
    compiled.clear()
    before = scrape(client)

    # When two evaluations are served
    evaluate(client, OFREP_ONE, secret)
    evaluate(client, OFREP_ONE, secret)

    # Then the first missed the process's rulesets (and built from the database), the next hit
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("flagship_ruleset_cache_total", tier="process", result="miss") == 1
    assert delta("flagship_ruleset_cache_total", tier="process", result="hit") >= 1
    assert delta("flagship_ruleset_build_seconds_count", trigger="miss") == 1


def test_ruleset_cache__shared_tier__miss_then_hit(
    client: Client, token: None, secret: str
) -> None:
    # Given the shared cache on (in-process here), empty
    with caching():
        before = scrape(client)
        # When a process misses the ruleset twice (its memory forgotten in between)
        evaluate(client, OFREP_ONE, secret)
        compiled.clear()
        evaluate(client, OFREP_ONE, secret)
        after = scrape(client)

    # Then the shared copy missed once (and was stored), then hit
    for result in ("miss", "hit"):
        labels = {"tier": "shared", "result": result}
        assert (
            value(after, "flagship_ruleset_cache_total", **labels)
            - value(before, "flagship_ruleset_cache_total", **labels)
            == 1
        )


@pytest.mark.requires_redis
def test_cache_gets__hits_and_misses_counted(client: Client, token: None) -> None:
    # Given the Redis cache (django-redis, counted) and a key only this test uses
    cache = caches["default"]
    assert type(cache).__module__ == "flagship.metrics_cache"
    key = f"metrics-test-{uuid.uuid4().hex}"
    before = scrape(client)

    # When the key is read missing, stored, then read twice
    assert cache.get(key) is None
    cache.set(key, "value", 30)
    assert cache.get(key) == "value"
    assert cache.get(key, default="other") == "value"

    # Then one miss and two hits were counted (and at least these three gets)
    after = scrape(client)

    def delta(name: str) -> float:
        return value(after, name, backend="redis") - value(before, name, backend="redis")

    assert delta("django_cache_get_misses_total") >= 1
    assert delta("django_cache_get_hits_total") >= 2
    assert delta("django_cache_get_total") >= 3
    cache.delete(key)


def test_http_and_database_series__counted(client: Client, token: None, secret: str) -> None:
    # Given the metrics before
    before = scrape(client)

    # When a cold evaluation is served (its key and ruleset read from PostgreSQL)
    compiled.clear()
    evaluate(client, OFREP_ONE, secret)

    # Then the request was timed and counted by view, and statements were executed
    after = scrape(client)
    view = {"view": "ofrep-flag", "method": "POST"}
    name = "django_http_requests_latency_seconds_by_view_method_count"
    assert value(after, name, **view) - value(before, name, **view) == 1
    status = {**view, "status": "200"}
    name = "django_http_responses_total_by_status_view_method_total"
    assert value(after, name, **status) - value(before, name, **status) == 1
    assert total(after, "django_db_execute_total") > total(before, "django_db_execute_total")


def test_buffered_observations__flushed__same_samples_as_observed_one_by_one() -> None:
    # Given two identical histograms and counters, in a registry of their own
    from prometheus_client import Counter, Histogram  # noqa: PLC0415  # this test's own

    registry = CollectorRegistry()
    bounds = metrics.LATENCY_BUCKETS
    buffered = Histogram("buffered_seconds", "", ["view"], registry=registry, buckets=bounds)
    direct = Histogram("direct_seconds", "", ["view"], registry=registry, buckets=bounds)
    counted = Counter("buffered_total", "", ["view"], registry=registry)
    # When the same durations (bucket bounds exactly among them) are observed, buffered and
    # flushed on one side, one by one with prometheus_client's observe() on the other
    durations = [0.0004, 0.001, 0.0010001, 0.003, 0.25, 9.99, 10.0, 42.0]
    for seconds in durations:
        metrics.observe(metrics.child(buffered, "v"), seconds)
        direct.labels("v").observe(seconds)
        metrics.bump(metrics.child(counted, "v"))
    before_flush = parse(generate_latest(registry).decode())
    metrics.flush()

    # Then nothing reached the buffered side before the flush, and after it every bucket, the
    # count and the sum are the ones observe() gives
    assert value(before_flush, "buffered_seconds_count", view="v") == 0
    samples = parse(generate_latest(registry).decode())
    renamed = {
        (name.replace("direct_", "buffered_"), labels): number
        for (name, labels), number in samples.items()
        if name.startswith("direct_") and not name.endswith("_created")
    }
    mine = {
        key: number
        for key, number in samples.items()
        if key[0].startswith("buffered_seconds") and not key[0].endswith("_created")
    }
    assert mine == pytest.approx(renamed)
    assert value(samples, "buffered_seconds_bucket", view="v", le="0.001") == 2
    assert value(samples, "buffered_total", view="v") == len(durations)


def test_rate_limited_requests__counted(client: Client, token: None, secret: str) -> None:
    # Given an evaluation limit of two requests a minute per key
    before = scrape(client)
    with override_settings(FLAGSHIP_SERVER_KEY_RATE="2/m"):
        from flags.evaluation import throttling  # noqa: PLC0415  # its limiter, reset below

        throttling.limiter.clear()
        # When four evaluations are asked for
        statuses = [
            client.post(
                OFREP_ONE, content_type="application/json", headers={"X-API-Key": secret}
            ).status_code
            for _ in range(4)
        ]
        throttling.limiter.clear()

    # Then two were refused with 429 and counted
    assert statuses == [200, 200, 429, 429]
    after = scrape(client)
    labels = {"view": "ofrep-flag"}
    assert (
        value(after, "flagship_rate_limited_requests_total", **labels)
        - value(before, "flagship_rate_limited_requests_total", **labels)
        == 2
    )


def test_webhook_delivery__counted_by_outcome(
    client: Client, token: None, project: Project, staging: Environment, boolean_flag: Flag
) -> None:
    # Given a webhook whose receiver answers 200 then 500, and two changes
    with Receiver() as receiver:
        services.webhook_create(project=project, name="ops", url=receiver.url())
        receiver.answer(200)
        receiver.answer(500)
        state = boolean_flag.states.get(environment=staging)
        state = services.flag_toggle(state=state, enabled=True, actor=None)
        services.flag_toggle(state=state, enabled=False, actor=None)
        before = scrape(client)

        # When the worker's sending step runs for both deliveries
        while sending.send_next() is not None:
            pass

    # Then one delivery was counted delivered and one retrying
    after = scrape(client)
    statuses = sorted(WebhookDelivery.objects.values_list("status", flat=True))
    assert statuses == ["delivered", "pending"]
    for outcome in ("delivered", "retrying"):
        assert (
            value(after, "flagship_webhook_deliveries_total", outcome=outcome)
            - value(before, "flagship_webhook_deliveries_total", outcome=outcome)
            == 1
        )


def test_scheduled_step__counted_by_status(
    client: Client, token: None, staging: Environment, boolean_flag: Flag
) -> None:
    # Given a scheduled switch-on of a flag, due
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415  # only here

    due = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
    state = boolean_flag.states.get(environment=staging)
    services.schedule_create(
        state=state, steps=[StepSpec(at=due, action="enable")], actor=None, note="launch"
    )
    before = scrape(client)

    # When the worker runs what is due
    assert run_due(now=due + timedelta(seconds=1)) == 1

    # Then one step was counted done
    assert ScheduledStep.objects.get().status == "done"
    after = scrape(client)
    assert (
        value(after, "flagship_scheduled_steps_total", status="done")
        - value(before, "flagship_scheduled_steps_total", status="done")
        == 1
    )


def test_stream_subscribers__gauge_follows_open_streams() -> None:
    # Given the gauge before
    before = gauge()

    # When two streams subscribe, then leave
    async def two_streams() -> float:
        async with broker.subscribe(1), broker.subscribe(2):
            return gauge()

    during = asyncio.run(two_streams())

    # Then the gauge rose by two while they were open and is back after
    assert (during - before, gauge() - before) == (2, 0)


def gauge() -> float:
    """``flagship_stream_subscribers`` in this process."""
    return float(REGISTRY.get_sample_value("flagship_stream_subscribers") or 0.0)


# --- Real servers ----------------------------------------------------------------------------
def served_environment(**extra: str) -> dict[str, str]:
    """Production settings for a child server on the test database and Redis, metrics token set."""
    database = connections["default"].settings_dict
    redis_url = urlsplit(str(settings.REDIS_URL))
    return node_environment(
        f"postgres://{database.get('USER') or 'postgres'}@{database.get('HOST') or '127.0.0.1'}"
        f":{database.get('PORT') or 5432}/{database['NAME']}",
        f"redis://127.0.0.1:{redis_url.port or 6379}/{redis_url.path.strip('/') or 0}",
        f"flagship-metrics-{uuid.uuid4().hex[:12]}",
        FLAGSHIP_METRICS_TOKEN=TOKEN,
        **extra,
    )


def scrape_port(port: int) -> Samples:
    """``GET /metrics`` of a child server, with the token; its samples."""
    status, _headers, body = request(
        port, "GET", "/metrics", None, {"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200, body
    return parse(body.decode())


@pytest.mark.requires_postgres
@pytest.mark.requires_redis
def test_stream_server__subscribers_gauge_on_its_own_metrics(
    transactional_db: None, tmp_path: Path
) -> None:
    # Given the change stream's server (uvicorn, flagship.asgi) and a server key
    project = services.project_create(key="demo", name="Demo")
    secret = issue(project.environments.get(key="staging"), ApiKey.Kind.SERVER)
    with cluster(tmp_path) as running:
        port = running.start_stream(served_environment())
        running.wait_ready()
        assert value(scrape_port(port), "flagship_stream_subscribers") == 0

        # When two clients open a stream
        subscribers = [Subscriber(port, secret), Subscriber(port, secret)]
        deadline, open_streams = time.monotonic() + 10, 0.0
        while time.monotonic() < deadline and open_streams != 2:
            open_streams = value(scrape_port(port), "flagship_stream_subscribers")
            time.sleep(0.1)

        # Then its /metrics counts them, and no longer once they left
        assert open_streams == 2, running.tail()
        for subscriber in subscribers:
            subscriber.close()
        while time.monotonic() < deadline and open_streams != 0:
            open_streams = value(scrape_port(port), "flagship_stream_subscribers")
            time.sleep(0.1)
        assert open_streams == 0, running.tail()


# --- Two gunicorn workers (multiprocess mode) ------------------------------------------------
def per_process(directory: Path, name: str) -> dict[str, float]:
    """The sum of ``name`` in each process's files of a multiprocess directory, by pid."""
    sums: dict[str, float] = {}
    for counter in directory.glob("counter_*.db"):
        alone = directory.parent / f"alone-{counter.stem}"
        alone.mkdir(exist_ok=True)
        shutil.copy(counter, alone / counter.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        text = "\n".join(
            f"{sample.name} {sample.value}"
            for family in registry.collect()
            for sample in family.samples
            if sample.name == name
        )
        sums[counter.stem.removeprefix("counter_")] = sum(
            float(line.split()[-1]) for line in text.splitlines()
        )
        shutil.rmtree(alone)
    return sums


@pytest.mark.requires_postgres
@pytest.mark.requires_redis
def test_two_gunicorn_workers__metrics_sum_every_workers_evaluations(
    transactional_db: None, tmp_path: Path
) -> None:
    # Given FlagShip under gunicorn with two workers, multiprocess mode in a directory of ours
    project = services.project_create(key="demo", name="Demo")
    staging = project.environments.get(key="staging")
    build_flags(project, staging)
    secret = issue(staging, ApiKey.Kind.SERVER)
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"left over from a former run")
    env = served_environment(
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="2",
        PROMETHEUS_MULTIPROC_DIR=str(directory),
        FLAGSHIP_METRICS_FLUSH_SECONDS="0.2",
    )
    with cluster(tmp_path) as running:
        port = running.start_web(env)
        running.wait_ready()

        # When N evaluations are sent from eight threads, each on a new connection
        n, errors = 120, []
        context = {"context": {"targetingKey": "u-1", "country": "DE"}}

        def send(count: int) -> None:
            for _ in range(count):
                status, _headers, body = request(
                    port, "POST", OFREP_ONE, context, {"X-API-Key": secret}
                )
                if status != 200:
                    errors.append((status, body))

        threads = [threading.Thread(target=send, args=(n // 8,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []

        # Then /metrics, whichever worker answers, sums N evaluations (within a few flushes)
        labels = {"project": "demo", "environment": "staging", "flag": "banner-text"}
        deadline, counted = time.monotonic() + 15, -1.0
        while time.monotonic() < deadline:
            status, _headers, body = request(
                port, "GET", "/metrics", None, {"Authorization": f"Bearer {TOKEN}"}
            )
            assert status == 200, running.tail()
            samples = parse(body.decode())
            counted = sum(
                number
                for (name, found), number in samples.items()
                if name == "flagship_evaluations_total"
                and all(item in found for item in labels.items())
            )
            if counted == n:
                break
            time.sleep(0.2)
        assert counted == n, running.tail()

        # And both workers served some: each one's own files hold part of the sum
        served = per_process(directory, "flagship_evaluations_total")
        assert "999999" not in served  # the former run's file was removed at start
        busy = {pid: count for pid, count in served.items() if count}
        assert sum(busy.values()) == n
        assert len(busy) == 2, busy
        # And the HTTP series are summed too
        requests = total(samples, "django_http_responses_total_by_status_view_method_total")
        assert requests >= n

    # And the directory the operator named is kept when gunicorn stops
    assert directory.is_dir()
