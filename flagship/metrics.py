"""FlagShip's Prometheus metrics: one module for every series, and cheap ways to count them.

``/metrics`` (``flagship.metrics_http``) exposes them with the HTTP, database and cache series
(``django_http_*``, ``django_db_*``, ``django_cache_*``, named as django-prometheus names them).
docs/operations.md, "Metrics", lists each series, its labels and the alert rules built on them.

Under gunicorn the series live in prometheus_client's **multiprocess mode**: each worker writes its
values to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` (set and emptied by
``gunicorn.conf.py``), and ``/metrics``, whichever worker answers it, sums every worker's files.
Without that variable (the development server, uvicorn, the worker, tests) a process keeps its
own values in memory.

The evaluation paths count on every request, so they do not touch a Prometheus value at all:
:func:`evaluated` tallies the request's result objects by identity in a plain ``Counter`` in this
process's memory (C-level ``map(id, ...)`` and ``Counter.update``, under an uncontended lock), and
a daemon thread moves the counts into ``flagship_evaluations_total`` every
``FLAGSHIP_METRICS_FLUSH_SECONDS`` (1 s); the process that answers ``/metrics`` moves its own at
once. A worker killed between two flushes
loses at most that second of counts. The ruleset cache's hits in process memory, also counted on
every evaluation, go the same way.

Cardinality: ``flagship_evaluations_total`` has one series per project, environment, flag and
variant served. A few thousand flags with two or three variants each are well within what one
Prometheus holds; above that, ``FLAGSHIP_METRICS_FLAG_LABEL=false`` counts per variant name only
(the ``flag`` label is then ``""``).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter as Tally
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram

from flags import conf

# Multiprocess mode (gunicorn): chosen by prometheus_client when it is imported, so read once here.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

# Seconds; evaluation answers take about a millisecond, management calls up to a few hundred.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BUILD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# --- HTTP (flagship.metrics_http.MetricsMiddleware), named as django-prometheus names them ---
http_latency = Histogram(
    "django_http_requests_latency_seconds_by_view_method",
    "Time to answer a request, from the outermost middleware, by view and method.",
    ["view", "method"],
    buckets=LATENCY_BUCKETS,
)
http_responses = Counter(
    "django_http_responses_total_by_status_view_method",
    "Responses by status, view and method.",
    ["status", "view", "method"],
)
http_exceptions = Counter(
    "django_http_exceptions_total_by_type",
    "Exceptions raised out of a view (before Django turned them into a response), by type.",
    ["type"],
)
rate_limited = Counter(
    "flagship_rate_limited_requests_total",
    "Requests refused with 429 (evaluation and stream limits, API and admin sign-in limits).",
    ["view"],
)

# --- Database (flagship.db.postgresql) and cache (flagship.metrics_cache) --------------------
db_queries = Counter(
    "django_db_execute_total", "Statements executed, by database and vendor.", ["alias", "vendor"]
)
db_errors = Counter(
    "django_db_errors_total",
    "Statements that raised, by database, vendor and exception type.",
    ["alias", "vendor", "type"],
)
db_duration = Histogram(
    "django_db_query_duration_seconds",
    "Statement duration, by database and vendor.",
    ["alias", "vendor"],
    buckets=LATENCY_BUCKETS,
)
db_connection_errors = Counter(
    "django_db_new_connection_errors_total",
    "Connections that could not be obtained (refused, pool timeout, breaker open).",
    ["alias", "vendor"],
)
cache_gets = Counter("django_cache_get_total", "Cache gets, by backend.", ["backend"])
cache_hits = Counter("django_cache_get_hits_total", "Cache gets that hit, by backend.", ["backend"])
cache_misses = Counter(
    "django_cache_get_misses_total", "Cache gets that missed, by backend.", ["backend"]
)
cache_failures = Counter(
    "django_cache_get_fail_total", "Cache gets that failed, by backend.", ["backend"]
)

# --- FlagShip's own ------------------------------------------------------------------------
evaluations = Counter(
    "flagship_evaluations_total",
    "Flag evaluations served by the REST and OFREP endpoints (ruleset downloads and streams "
    "excluded), by project, environment, flag and variant.",
    ["project", "environment", "flag", "variant"],
)
ruleset_cache = Counter(
    "flagship_ruleset_cache_total",
    "Ruleset lookups by tier (process: compiled rulesets in memory; shared: the document in "
    "Redis) and result (hit, miss).",
    ["tier", "result"],
)
ruleset_build = Histogram(
    "flagship_ruleset_build_seconds",
    "Time to build a ruleset document from PostgreSQL, by trigger (commit: rebuilt for the shared "
    "cache after a change; miss: built for a request).",
    ["trigger"],
    buckets=BUILD_BUCKETS,
)
stream_subscribers = Gauge(
    "flagship_stream_subscribers",
    "Open change streams (GET /api/v1/stream), summed over the live processes.",
    multiprocess_mode="livesum",
)
webhook_deliveries = Counter(
    "flagship_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retrying, dead).",
    ["outcome"],
)
schedule_steps = Counter(
    "flagship_scheduled_steps_total",
    "Scheduled change steps run by the worker, by status (done, failed).",
    ["status"],
)


# --- Batched counting for the evaluation path ---------------------------------------------
class _Result(Protocol):
    """An evaluation result (``flagship_sdk.engine.EvaluationResult``)."""

    @property
    def key(self) -> str:
        """The flag's key."""

    @property
    def variant(self) -> str | None:
        """The variant served."""


class _Document(Protocol):
    """A compiled ruleset (``flags.delivery.compiled.CompiledRuleset``)."""

    @property
    def document(self) -> dict[str, Any]:
        """The ruleset document (its ``project`` and ``environment`` keys label the counts)."""


@dataclass
class _Window:
    """One environment's evaluation counts since the last flush, by result object."""

    tally: Tally[int] = field(default_factory=Tally)  # id(result) -> times served
    labels: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # id -> flag, variant
    alive: list[object] = field(default_factory=list)  # the results counted: their ids stay theirs


_lock = threading.Lock()
_pending: dict[tuple[str, str], _Window] = {}  # (project, environment) -> counts since the flush
_pending_hits = 0  # process-tier ruleset cache hits since the last flush
_flusher_started = False  # in this process (reset in a forked child: threads do not survive)


def evaluated(compiled: _Document, results: Collection[_Result]) -> None:
    """Count the results one evaluation request served (called by both evaluation paths).

    No Prometheus call and no Python code per result: the engine hands out the same result
    objects again and again (it builds them when it compiles a ruleset), so the results are
    tallied by identity (C-level ``map(id, ...)`` into a ``Counter``). Only a result not seen since
    the last flush has its flag and variant noted (and is kept alive, so its id stays its own);
    :func:`flush` turns the tally into ``flagship_evaluations_total``.
    """
    if not conf.metrics_enabled():
        return
    document = compiled.document
    where = (str(document.get("project", "")), str(document.get("environment", "")))
    with _lock:
        window = _pending.get(where)
        if window is None:
            window = _pending[where] = _Window()
        tally = window.tally
        before = len(tally)
        tally.update(map(id, results))
        if len(tally) != before:  # results not seen in this window yet
            labels = window.labels
            for result in results:
                if id(result) not in labels:
                    labels[id(result)] = (result.key, result.variant)
                    window.alive.append(result)
    if not _flusher_started:
        _start_flusher()


def ruleset_hit() -> None:
    """A ruleset found compiled in this process's memory (every warm evaluation)."""
    global _pending_hits  # noqa: PLW0603  # a plain integer, guarded by the lock
    with _lock:
        _pending_hits += 1
    if not _flusher_started:
        _start_flusher()


def ruleset_lookup(tier: str, result: str) -> None:
    """A ruleset lookup that is not a warm hit: ``tier`` process or shared, ``result`` hit/miss."""
    ruleset_cache.labels(tier, result).inc()


@contextmanager
def timed_build(trigger: str) -> Iterator[None]:
    """Time a ruleset document's build from the database (``trigger``: commit or miss)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        ruleset_build.labels(trigger).observe(time.perf_counter() - started)


def flush() -> None:
    """Move this process's pending counts into its Prometheus values."""
    global _pending_hits  # swapped under the lock
    with _lock:
        pending = dict(_pending)
        _pending.clear()
        hits, _pending_hits = _pending_hits, 0
    with_flag = conf.metrics_flag_label()
    for (project, environment), window in pending.items():
        sums: Tally[tuple[str, str]] = Tally()
        for identity, count in window.tally.items():
            flag, variant = window.labels[identity]
            sums[flag if with_flag else "", variant or ""] += count
        for (flag, variant), count in sums.items():
            evaluations.labels(project, environment, flag, variant).inc(count)
    if hits:
        ruleset_cache.labels("process", "hit").inc(hits)


def _start_flusher() -> None:
    """Start this process's flushing thread once (again in a forked child)."""
    global _flusher_started  # noqa: PLW0603  # one thread per process
    with _lock:
        if _flusher_started:
            return
        _flusher_started = True
    threading.Thread(target=_flush_forever, name="metrics-flush", daemon=True).start()


def _forked() -> None:
    """In a forked child (a gunicorn worker): no flushing thread yet, no counts of the parent."""
    global _flusher_started, _pending_hits, _lock  # noqa: PLW0603  # this process's fresh state
    _lock = threading.Lock()  # a thread of the parent may have held it at the fork
    _flusher_started = False
    _pending.clear()
    _pending_hits = 0


os.register_at_fork(after_in_child=_forked)


def _flush_forever() -> None:
    while True:
        time.sleep(max(0.05, conf.metrics_flush_seconds()))
        try:
            flush()
        except Exception:  # noqa: S112  # a metric must never stop the thread
            continue
