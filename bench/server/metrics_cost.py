"""The metrics section of ``bench.server``: throughput with Prometheus metrics on and off.

Issue 14 allows metrics at most 5 % of bulk-evaluation throughput, "measured in the same run with
metrics on and off". FlagShip is started under gunicorn (``gunicorn.conf.py``, multiprocess mode)
twice in turn, once as deployed (``FLAGSHIP_METRICS_ENABLED=true``, a scrape token set) and once
with ``FLAGSHIP_METRICS_ENABLED=false`` (no metrics middleware, plain cache and database backends,
no evaluation counting), never both at once. Each round starts each variant, measures bulk
evaluation (``POST /api/v1/evaluate`` and OFREP, 200 flags) and OFREP single-flag evaluation at 32
connections, and stops it; rounds alternate which variant goes first, so a change in the
machine's load falls on both. The figures are the medians of every round's runs; the cost is
``1 - on / off``. While metrics are on, one scrape of ``/metrics`` at the end checks that the
evaluations were counted (the exposition's ``flagship_evaluations_total``).
"""

from __future__ import annotations

import http.client
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from flagship.processes import Processes, free_port, wait_http

from .run import Endpoint, Options, measure

MEASURED = ("bulk", "ofrep-bulk", "single")
VARIANTS = ("on", "off")
GOAL = 0.05  # at most 5 % of throughput
TOKEN = "bench-metrics-" + "t0k3n-" * 4  # a benchmark's scrape token


@dataclass
class VariantResult:
    """Requests/s of each measured endpoint with metrics on or off, over every round."""

    variant: str
    runs: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    counted: float = 0.0  # flagship_evaluations_total at the last scrape (metrics on)

    def rps(self, name: str) -> float:
        """The median requests/s of ``name``."""
        return statistics.median(self.runs[name]) if self.runs.get(name) else 0.0


def _variant_env(env: dict[str, str], variant: str, port: int) -> dict[str, str]:
    metrics = {"on": {"FLAGSHIP_METRICS_ENABLED": "true", "FLAGSHIP_METRICS_TOKEN": TOKEN}}
    off = {"FLAGSHIP_METRICS_ENABLED": "false"}
    return {**env, **metrics.get(variant, off), "GUNICORN_BIND": f"127.0.0.1:{port}"}


def evaluations_counted(port: int) -> float:
    """The sum of ``flagship_evaluations_total`` in a scrape of ``/metrics``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    if response.status != 200:  # HTTP OK
        raise RuntimeError(f"GET /metrics answered {response.status}")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("flagship_evaluations_total{")
    )


def run_metrics_cost(  # noqa: PLR0917  # the run's state, passed on
    processes: Processes,
    env: dict[str, str],
    requests: dict[str, Endpoint],
    options: Options,
    wrk_path: str,
    workdir: Path,
    rounds: int,
) -> list[VariantResult]:
    """Each round: each variant started, measured and stopped (order alternating by round)."""
    results = {variant: VariantResult(variant) for variant in VARIANTS}
    for number in range(rounds):
        order = VARIANTS if number % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            print(f"Metrics {variant}, round {number + 1}/{rounds} ...", file=sys.stderr)
            name = f"metrics-{variant}"
            port = free_port()
            processes.start(
                name,
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "flagship.wsgi"],
                _variant_env(env, variant, port),
            )
            try:
                wait_http(port, "/healthz", processes, name)
                entry = results[variant]
                for endpoint_name in MEASURED:
                    measured = measure(
                        wrk_path,
                        port,
                        requests[endpoint_name],
                        options,
                        workdir,
                        latency=False,
                    )
                    entry.runs.setdefault(endpoint_name, []).extend(measured.rps_runs)
                    entry.errors += measured.errors
                if variant == "on":
                    entry.counted = evaluations_counted(port)
            finally:
                processes.stop_one(name)
    return list(results.values())


def metrics_report(results: list[VariantResult], options: Options, rounds: int) -> list[str]:
    """The section's Markdown."""
    by_variant = {result.variant: result for result in results}
    on, off = by_variant["on"], by_variant["off"]
    lines = [
        "## Metrics on and off (issue 14)",
        "",
        f"FlagShip under gunicorn (`gunicorn.conf.py`, Prometheus multiprocess mode) started "
        f"with `FLAGSHIP_METRICS_ENABLED=true` and `false` in turn, {rounds} rounds alternating "
        f"which goes first; requests/s at 32 connections, median of "
        f"{rounds * options.throughput_runs} runs of {options.throughput_seconds} s each. "
        f"Goal: metrics cost at most {GOAL:.0%} of bulk-evaluation throughput.",
        "",
        "| endpoint | metrics off req/s | metrics on req/s | cost | goal |",
        "|---|---:|---:|---:|---|",
    ]
    for name in MEASURED:
        cost = 1 - on.rps(name) / off.rps(name) if off.rps(name) else 0.0
        verdict = "✅" if cost <= GOAL else "❌"
        goal = f"≤ {GOAL:.0%} {verdict}" if name in {"bulk", "ofrep-bulk"} else "—"
        lines.append(
            f"| {name} | {off.rps(name):,.0f} | {on.rps(name):,.0f} | {cost:+.1%} | {goal} |"
        )
    lines += [
        "",
        f"Errors: {off.errors} off, {on.errors} on. `flagship_evaluations_total` at the last "
        f"scrape (metrics on, last round): {on.counted:,.0f}.",
        "",
    ]
    return lines
