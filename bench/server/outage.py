"""The outage section of ``bench.server``: evaluation with PostgreSQL, Redis or both cut.

FlagShip is started under gunicorn (``gunicorn.conf.py``) with its database and Redis URLs
pointing at loopback fault proxies (``flagship.faults.FaultProxy``) in this process, in front of
the real servers. In one run, for each state (everything up; Redis cut; PostgreSQL cut; both
cut) the section:

1. cuts what the state cuts (connections closed, new ones refused), sends one second of load so
   every worker meets the outage (its first failure opens its breaker), then
2. measures OFREP single-flag and 200-flag bulk evaluation with wrk: requests/s and p99 at 32
   connections (median of the runs), errors (non-2xx and socket errors), and
3. times 20 sequential ``GET /readyz`` (status, median and slowest), then restores everything
   and waits until ``/readyz`` answers 200 again.

The goal (issue 11): no errors in any state, and each state's p99 within 2x of everything up.
"""

from __future__ import annotations

import http.client
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from flagship.faults import FaultProxy
from flagship.processes import Processes, free_port, wait_http

from .run import Endpoint, Measured, Options, measure

STATES = ("everything up", "Redis cut", "PostgreSQL cut", "both cut")
MEASURED = ("single", "ofrep-bulk")
READYZ_PROBES = 20
P99_GOAL = 2.0


@dataclass
class Probe:
    """``/readyz`` timings in one state."""

    statuses: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


@dataclass
class StateResult:
    """Figures of one state."""

    state: str
    measured: dict[str, Measured] = field(default_factory=dict)
    readyz: Probe = field(default_factory=Probe)


def readyz(port: int) -> Probe:
    """Time ``READYZ_PROBES`` sequential ``GET /readyz``, each on a new connection."""
    probe = Probe()
    for _ in range(READYZ_PROBES):
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/readyz")
            response = connection.getresponse()
            response.read()
            probe.statuses.append(response.status)
        except OSError:
            probe.statuses.append(0)
        finally:
            connection.close()
        probe.seconds.append(time.perf_counter() - started)
    return probe


def wait_ready(port: int, timeout: float = 30.0) -> None:
    """Wait until ten ``/readyz`` in a row answer 200 (every worker has recovered)."""
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < 10:
        if time.monotonic() > deadline:
            raise RuntimeError("FlagShip did not become ready again after the outage")
        streak = streak + 1 if readyz_once(port) == 200 else 0
        time.sleep(0.05)


def readyz_once(port: int) -> int:
    """One ``GET /readyz``: its status (0 when it failed)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        connection.close()


def run_outages(  # noqa: PLR0917  # the run's state, passed on
    processes: Processes,
    env: dict[str, str],
    requests: list[Endpoint],
    measure_one: Callable[[int, Endpoint], Measured],
    postgres_url: str,
    redis_url: str,
) -> list[StateResult]:
    """Start FlagShip behind fault proxies and measure it in each state."""
    database = urlsplit(postgres_url)
    cache = urlsplit(redis_url)
    endpoints = [endpoint for endpoint in requests if endpoint.name in MEASURED]
    results = []
    with (
        FaultProxy(database.hostname or "127.0.0.1", database.port or 5432) as pg,
        FaultProxy(cache.hostname or "127.0.0.1", cache.port or 6379) as redis,
    ):
        port = free_port()
        processes.start(
            "flagship-outage",
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "flagship.wsgi"],
            {
                **env,
                "DATABASE_URL": pg.url(postgres_url),
                "REDIS_URL": redis.url(redis_url),
                "GUNICORN_BIND": f"127.0.0.1:{port}",
            },
        )
        wait_http(port, "/healthz", processes, "flagship-outage")
        cuts = {
            "everything up": (),
            "Redis cut": (redis,),
            "PostgreSQL cut": (pg,),
            "both cut": (pg, redis),
        }
        for state in STATES:
            print(f"Outage: {state} ...", file=sys.stderr)
            for proxy in cuts[state]:
                proxy.sever()
            result = StateResult(state)
            for endpoint in endpoints:
                result.measured[endpoint.name] = measure_one(port, endpoint)
            result.readyz = readyz(port)
            results.append(result)
            for proxy in cuts[state]:
                proxy.restore()
            wait_ready(port)
        processes.stop_one("flagship-outage")
    return results


def measure_state(
    wrk_path: str, options: Options, workdir: Path
) -> Callable[[int, Endpoint], Measured]:
    """``measure`` at 32 connections only (the p99 under load is the figure compared)."""

    def measure_one(port: int, endpoint: Endpoint) -> Measured:
        return measure(wrk_path, port, endpoint, options, workdir, latency=False)

    return measure_one


def outage_report(results: list[StateResult], workers: str) -> list[str]:
    """The outage section of the Markdown report."""
    up = results[0]
    lines = [
        "### Outages: PostgreSQL, Redis and both cut",
        "",
        f"FlagShip under gunicorn ({workers}) reaching PostgreSQL and Redis through loopback "
        "fault proxies; a cut closes every connection and refuses new ones. Requests/s and p99 "
        "at 32 connections (median of the runs); errors are non-2xx responses and socket "
        f"errors; `/readyz` timed {READYZ_PROBES} times in a row in each state. Goal: no "
        f"errors, p99 within {P99_GOAL:g}x of everything up.",
        "",
        "| state | endpoint | req/s | vs up | p99 @32 (ms) | vs up | errors "
        "| /readyz status | /readyz median (ms) | /readyz max (ms) |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for result in results:
        statuses = "/".join(str(status) for status in sorted(set(result.readyz.statuses)))
        median = statistics.median(result.readyz.seconds) * 1000
        slowest = max(result.readyz.seconds) * 1000
        for name, measured in result.measured.items():
            base = up.measured[name]
            ratio = measured.p99_at_32_ms / base.p99_at_32_ms if base.p99_at_32_ms else 0.0
            mark = " ⚠" if ratio > P99_GOAL or measured.errors else ""
            lines.append(
                f"| {result.state} | {measured.endpoint.label} | {measured.rps:,.0f} "
                f"| {measured.rps / base.rps:.2f}x | {measured.p99_at_32_ms:.2f} "
                f"| {ratio:.2f}x{mark} | {measured.errors} | {statuses} | {median:.1f} "
                f"| {slowest:.1f} |"
            )
    missed = [
        f"{result.state} / {name}"
        for result in results
        for name, measured in result.measured.items()
        if measured.errors or measured.p99_at_32_ms > P99_GOAL * up.measured[name].p99_at_32_ms
    ]
    lines += [
        "",
        "Goal met in every state." if not missed else f"Goal missed: {', '.join(missed)}.",
        "",
    ]
    return lines
