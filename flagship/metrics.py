"""FlagShip's Prometheus metrics: one module for every series, and cheap ways to count them.

``/metrics`` (``flagship.metrics_http``) exposes them with the HTTP, database and cache series
(``django_http_*``, ``django_db_*``, ``django_cache_*``, named as django-prometheus names them).
docs/operations.md, "Metrics", lists each series, its labels and the alert rules built on them.

Under gunicorn the series live in prometheus_client's **multiprocess mode**: each worker writes its
values to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` (set and emptied by
``gunicorn.conf.py``), and ``/metrics``, whichever worker answers it, sums every worker's files.
Without that variable (the development server, uvicorn, the worker, tests) a process keeps its
own values in memory.

What is counted on every request does not touch a Prometheus value on the request path: in
multiprocess mode each update is a locked write into a memory-mapped file, and looking a labelled
child up costs as much again. Instead:

- the evaluations served are tallied once for every consumer (``flags.evaluation.tally``: result
  objects by identity, C-level), and :func:`flush` adds them to ``flagship_evaluations_total``;
- HTTP responses, database statements, cache gets and ruleset cache hits are buffered here, as
  plain integers and bucket counts under an uncontended lock (:func:`bump`, :func:`observe`,
  :func:`request_served`), their labelled children looked up once (:func:`child`).

A daemon thread flushes every ``FLAGSHIP_METRICS_FLUSH_SECONDS`` (1 s); the process that answers
``/metrics`` flushes its own at once. A worker killed between two flushes loses at most that
second of values. Issue 14 measured the cost of metrics on bulk evaluation before and after this
(bench/RESULTS.md, "Metrics on and off").

Cardinality: ``flagship_evaluations_total`` has one series per project, environment, flag and
variant served. A few thousand flags with two or three variants each are well within what one
Prometheus holds; above that, ``FLAGSHIP_METRICS_FLAG_LABEL=false`` counts per variant name only
(the ``flag`` label is then ``""``).
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from flags import conf
from flags.evaluation import tally

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


# --- Buffered on the request path --------------------------------------------------------------
class _Timings:
    """A histogram child's observations since the last flush: count, sum and per-bucket counts."""

    __slots__ = ("bounds", "buckets", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds  # the histogram's finite upper bounds (+Inf is the last bucket)
        self.buckets = [0] * (len(bounds) + 1)
        self.total = 0.0


_lock = threading.Lock()
_bumps: Tally[Any] = Tally()  # a counter's child -> increments since the flush
_timings: dict[Any, _Timings] = {}  # a histogram's child -> observations since the flush
_children: dict[tuple[Any, ...], Any] = {}  # (metric, *label values) -> its child, looked up once
_pending_hits = 0  # process-tier ruleset cache hits since the last flush
_flusher_started = False  # in this process (reset in a forked child: threads do not survive)


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, remembered: a dictionary lookup instead of the client's."""
    key = (metric, *labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def bump(counter: Any, amount: int = 1) -> None:
    """Add to a counter's child at the next flush (an integer under a lock, no file write)."""
    with _lock:
        _bumps[counter] += amount
    if not _flusher_started:
        _start_flusher()


def observe(histogram: Any, seconds: float, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
    """Observe ``seconds`` on a histogram's child (of buckets ``bounds``) at the next flush."""
    index = bisect_left(bounds, seconds)  # the first bucket whose bound is >= seconds (le)
    with _lock:
        timings = _timings.get(histogram)
        if timings is None:
            timings = _timings[histogram] = _Timings(bounds)
        timings.buckets[index] += 1
        timings.total += seconds
    if not _flusher_started:
        _start_flusher()


def request_served(view: str, method: str, status: int, seconds: float) -> None:
    """One HTTP response (``flagship.metrics_http``): latency, status and 429s, buffered."""
    observe(child(http_latency, view, method), seconds)
    bump(child(http_responses, str(status), view, method))
    if status == 429:  # Too Many Requests
        bump(child(rate_limited, view))


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
    """Move this process's buffered values (evaluations included) into its Prometheus values."""
    global _pending_hits  # swapped under the lock
    tally.settle()  # flagship_evaluations_total, through _export
    with _lock:
        bumps, timings = dict(_bumps), dict(_timings)
        _bumps.clear()
        _timings.clear()
        hits, _pending_hits = _pending_hits, 0
    for counter, amount in bumps.items():
        counter.inc(amount)
    for histogram, observed in timings.items():
        # prometheus_client has no public way to add many observations at once: add to the
        # child's sum and bucket values (its own observe() does exactly this, one at a time).
        histogram._sum.inc(observed.total)
        for index, count in enumerate(observed.buckets):
            if count:
                histogram._buckets[index].inc(count)
    if hits:
        ruleset_cache.labels("process", "hit").inc(hits)


@tally.consumer
def _export(drained: tally.Drained) -> None:
    """The evaluations served while metrics were on, into ``flagship_evaluations_total``."""
    with_flag = conf.metrics_flag_label()
    for where, served in drained.items():
        if not where.export:
            continue
        sums: Tally[tuple[str, str]] = Tally()
        for (flag, variant), count in served.items():
            sums[flag if with_flag else "", variant or ""] += count
        for (flag, variant), count in sums.items():
            evaluations.labels(where.project, where.environment, flag, variant).inc(count)


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
    _bumps.clear()
    _timings.clear()
    _pending_hits = 0


os.register_at_fork(after_in_child=_forked)


def _flush_forever() -> None:
    while True:
        time.sleep(max(0.05, conf.metrics_flush_seconds()))
        try:
            flush()
        except Exception:  # noqa: S112  # a metric must never stop the thread
            continue
