"""Gunicorn settings for FlagShip's WSGI workers (``gunicorn -c gunicorn.conf.py flagship.wsgi``).

Every value can be overridden from the environment (``GUNICORN_*``). The Server-Sent Events stream
is not served here: idle streams must not hold a synchronous worker, so it runs on the ASGI
application (``flagship.asgi``) beside these workers (docs/operations.md).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
from pathlib import Path

from gunicorn.glogging import Logger


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# Loopback by default: a reverse proxy (TLS, buffering of slow clients) sits in front.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Workers and threads were chosen by measurement: bench/RESULTS.md, "Server (issue 5)", "gunicorn
# sweep" (``python -m bench.server.run --sweep``): OFREP single-flag and bulk evaluation at 32
# connections for gthread cores x 1, (cores + 1) x 2, (2 x cores + 1) x 4, 2 x cores x 8 and sync
# 2 x cores + 1, on 2 cores. (cores + 1) x 2 threads scored best in both full measurements
# (geometric mean of the two req/s; 3-20 % ahead of the others, not far above the noise of a
# shared machine) with a p99 at 32 connections among the lowest, and holds about a third less
# memory and far fewer database connections (6, not 20) than the former (2 x cores + 1) x 4.
# Re-run the sweep on other core counts before trusting the rule there.
#
# gthread: each worker process serves several requests at once with threads. Evaluation is short
# and mostly CPU (dictionary lookups, hashing) with small waits on Redis and, when cold, on
# PostgreSQL; threads cover those waits without the memory of more processes, and unlike the
# sync worker a keep-alive connection does not pin a whole process (sync measured as fast, with a
# lower tail, but only because the load generator reconnects for every request: no keep-alive).
# gevent/eventlet would need monkey-patching of psycopg and redis for no gain on this CPU path.
#
# flagship.workers.ReusePortThreadWorker is gthread with a listening socket per worker
# (SO_REUSEPORT): the kernel spreads new connections over the workers. With the stock gthread
# worker the first worker to wake accepts every waiting connection, so a few persistent
# connections (wrk's, a load balancer's upstream pool) often all land on one worker and leave a
# core idle. Measured by ``python -m bench.server.run --balance`` (docs/operations.md, "Workers
# and connections"), 2026-12-07 on 2 shared cores, 3 x 2, bulk and single evaluation, 4 runs of
# each: at 32 connections the stock worker left a worker with 0-2 connections in 7 of 8 runs
# (once all 32 on one worker), this one in none (the least loaded worker held 4-8); at 4
# connections the stock worker put all 4 on one worker in 3 of 8 runs, this one never. Requests/s
# did not separate them on that machine (other benchmarks held the cores; see the report), so
# the choice rests on the spread, which decides whether a second core can be used at all.
# GUNICORN_WORKER_CLASS=gthread restores the stock worker.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "flagship.workers.ReusePortThreadWorker")

# SO_REUSEPORT: on with the worker above (each worker opens its own socket; the master none),
# off otherwise unless GUNICORN_REUSE_PORT=1 (gunicorn's gthread then opens per-worker sockets
# too, but does not drain them when a worker stops).
reuse_port = os.environ.get(
    "GUNICORN_REUSE_PORT", "1" if worker_class.endswith("ReusePortThreadWorker") else "0"
) in {"1", "true", "yes"}

# One process per core (each runs Python under its own GIL) plus one to cover a worker's waits and
# recycling; capped, since past a dozen processes each one mostly adds memory and database
# connections (each process has its own pool, DATABASE_POOL_MAX_SIZE).
workers = _int("GUNICORN_WORKERS", min(multiprocessing.cpu_count() + 1, 12))

# Threads per worker: two overlap a request's Redis and database round trips with another's
# Python work; more only queue on the GIL (8 per worker measured worse, with a higher tail). Keep
# threads <= DATABASE_POOL_MAX_SIZE.
threads = _int("GUNICORN_THREADS", 2)

# A request that runs this long is stuck (evaluation takes milliseconds; the slowest management
# call a few hundred): kill and replace the worker rather than let it hold a slot. The database
# pool timeout (10 s) and Redis socket timeouts (1 s) stay well below it.
timeout = _int("GUNICORN_TIMEOUT", 30)
# Time for in-flight requests to finish on restart/deploy (SIGTERM) before workers are killed.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)

# SDKs poll and evaluate over persistent connections: keeping them open saves a TCP (and, behind
# the proxy, upstream) handshake per call. A few seconds, longer than the proxy's idle reuse is
# pointless and only holds threads.
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Recycle workers now and then to bound slow leaks (fragmentation of compiled rulesets); the
# jitter spreads restarts so all workers never restart (and recompile) at the same moment. A
# recycled worker's first requests are cold (connections, compiled rulesets): at the thousands of
# evaluations per second a worker serves, 10 000 recycled every few seconds, and the cold
# requests were what the benchmark's p99 at one connection measured (100-200 ms). 200 000 is a
# few minutes at full load.
max_requests = _int("GUNICORN_MAX_REQUESTS", 200_000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 20_000)

# Import the application once in the master, then fork: faster start-up and shared memory pages.
# Safe: database and Redis connections are opened lazily, in each worker, after the fork.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") == "1"

# Logs to stdout/stderr for the process supervisor. The application writes its own access line
# (request.finished, flagship/access.py: structured, with the request id, latency and caller), so
# gunicorn's plain-text access log is off unless GUNICORN_ACCESS_LOG names a file ("-": stdout);
# it carries the request id (X-Request-ID) to join with the application's lines; %(D)s is the
# duration in microseconds.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(D)sus request_id=%({x-request-id}o)s ua="%(a)s"'


class StructuredLogger(Logger):
    """Gunicorn's own lines (workers booting, timing out) in the application's format.

    ``DJANGO_LOG_FORMAT`` as in flagship/settings.py: JSON in production, console lines elsewhere.
    Only the error log is rerouted: the access log stays as configured above.
    """

    def setup(self, cfg: object) -> None:
        """Gunicorn's set-up, then the error log through flagship.logs' formatter."""
        from flagship.logs import formatter  # noqa: PLC0415  # structlog only, no Django

        super().setup(cfg)
        production = os.environ.get("DJANGO_ENV") == "production"
        handler = logging.StreamHandler()
        handler.setFormatter(
            formatter(os.environ.get("DJANGO_LOG_FORMAT", "json" if production else "console"))
        )
        for old in list(self.error_log.handlers):
            self.error_log.removeHandler(old)
        self.error_log.addHandler(handler)


logger_class = StructuredLogger

# Headers from the reverse proxy are trusted only from loopback (the proxy's address).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker: object) -> None:
    """Warm a new worker before it accepts requests (after the fork; also after each recycling).

    The first request of a cold worker otherwise pays for the URL resolver, the database and
    Redis connections and this process's change subscription. Failures are ignored: a dependency
    that is down is the request's business (and the probes'), not the worker's start-up.
    """
    from django.apps import apps  # noqa: PLC0415  # after Django is set up

    if not (apps.ready and apps.is_installed("flags")):  # another application (bench, tests)
        return
    from flagship.warmup import warm_up  # noqa: PLC0415

    warm_up()


# --- Prometheus multiprocess mode (docs/operations.md, "Metrics") ----------------------------
# Each worker writes its metric values to memory-mapped files in PROMETHEUS_MULTIPROC_DIR, and
# /metrics sums the files of every worker, whichever worker answers the scrape. Set here, before
# the application (and prometheus_client) is imported: a private directory per master unless the
# operator names one. Its files are removed at start (values of a former run would be summed) and
# a dead worker's live gauges with it (prometheus_client's mark_process_dead). Only in gunicorn's
# master (not when another program merely reads this file).
_OWN_METRICS_DIR = "gunicorn.arbiter" in sys.modules and not os.environ.get(
    "PROMETHEUS_MULTIPROC_DIR"
)
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="flagship-metrics-")


# With ReusePortThreadWorker the master listens too (SO_REUSEPORT, in the workers' group): its
# socket holds new connections while every worker restarts at once, instead of refusing them
# (flagship/workers.py). GUNICORN_MASTER_SOCKET=0: only the workers listen (gunicorn's way).
_MASTER_SOCKET = (
    reuse_port
    and worker_class.endswith("ReusePortThreadWorker")
    and os.environ.get("GUNICORN_MASTER_SOCKET", "1") == "1"
)


def on_starting(server: object) -> None:
    """Open the master's socket (see above); empty the metrics directory."""
    if _MASTER_SOCKET and not server.LISTENERS:  # type: ignore[attr-defined]
        from gunicorn import sock  # noqa: PLC0415

        server.LISTENERS = sock.create_sockets(server.cfg, server.log)  # type: ignore[attr-defined]
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: object, worker: object) -> None:
    """Drop a dead worker's live gauges (its counters and histograms keep counting in the sum)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess  # noqa: PLC0415  # after the directory is set

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    """Remove the private metrics directory this configuration created."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
