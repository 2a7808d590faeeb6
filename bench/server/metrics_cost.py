"""The metrics section of ``bench.server``: throughput with Prometheus metrics on and off.

Issue 14 allows metrics at most 5 % of bulk-evaluation throughput, "measured in the same run with
metrics on and off". FlagShip is started under gunicorn (``gunicorn.conf.py``, multiprocess mode)
twice in turn, once as deployed (``FLAGSHIP_METRICS_ENABLED=true``, a scrape token set) and once
with ``FLAGSHIP_METRICS_ENABLED=false`` (no metrics middleware, plain cache and database backends,
no evaluation counting), never both at once. Each round starts each variant, measures bulk
evaluation (``POST /api/v1/evaluate`` and OFREP, 200 flags) and OFREP single-flag evaluation at 32
connections, and stops it; rounds alternate which variant goes first, so a change in the
machine's load falls on both. The figures are the medians of every round's runs; the cost is
``1 - on / off``. On a machine shared with other work requests/s swing widely, so the section
also reports the gunicorn processes' own CPU time per request (user + system, read from
``/proc`` around the timed runs, warm-up excluded): what metrics add to each request, whatever
else runs. While metrics are on, one scrape of ``/metrics`` at the end checks that the
evaluations were counted (the exposition's ``flagship_evaluations_total``).
"""

from __future__ import annotations

import http.client
import os
import statistics
import sys
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from flagship.processes import Processes, wait_http

from .run import Endpoint, Options, lua_script, start_gunicorn, wrk

MEASURED = ("bulk", "ofrep-bulk", "single")
VARIANTS = ("on", "off")
GOAL = 0.05  # at most 5 % of throughput
TOKEN = "bench-metrics-" + "t0k3n-" * 4  # a benchmark's scrape token


@dataclass
class VariantResult:
    """Requests/s of each measured endpoint with metrics on or off, over every round."""

    variant: str
    runs: dict[str, list[float]] = field(default_factory=dict)
    cpu_us: dict[str, list[float]] = field(default_factory=dict)  # CPU µs per request, per round
    errors: int = 0
    counted: float = 0.0  # flagship_evaluations_total at the last scrape (metrics on)

    def rps(self, name: str) -> float:
        """The median requests/s of ``name``."""
        return statistics.median(self.runs[name]) if self.runs.get(name) else 0.0

    def cpu(self, name: str) -> float:
        """The median CPU time per request of ``name``, in µs."""
        return statistics.median(self.cpu_us[name]) if self.cpu_us.get(name) else 0.0


def cpu_seconds(processes: Processes, name: str) -> float:
    """User + system CPU time of a child and its descendants (Linux ``/proc``), in seconds."""
    pids = [child.pid for child_name, child in processes.children if child_name == name]
    ticks = 0
    while pids:
        pid = pids.pop()
        with suppress(OSError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
            for task in Path(f"/proc/{pid}/task").iterdir():
                pids.extend(int(p) for p in (task / "children").read_text().split())
    return ticks / os.sysconf("SC_CLK_TCK")


def _variant_env(variant: str) -> dict[str, str]:
    if variant == "on":
        return {"FLAGSHIP_METRICS_ENABLED": "true", "FLAGSHIP_METRICS_TOKEN": TOKEN}
    return {"FLAGSHIP_METRICS_ENABLED": "false"}


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
            port = start_gunicorn(processes, env, name, _variant_env(variant))
            try:
                wait_http(port, "/healthz", processes, name)
                entry = results[variant]
                for endpoint_name in MEASURED:
                    endpoint = requests[endpoint_name]
                    url = f"http://127.0.0.1:{port}{endpoint.path}"
                    script = lua_script(endpoint, workdir)
                    wrk(wrk_path, url, script, connections=32, threads=2, seconds=1)  # warm-up
                    started, served = cpu_seconds(processes, name), 0.0
                    for _ in range(options.throughput_runs):
                        rps, errors, _latency = wrk(
                            wrk_path,
                            url,
                            script,
                            connections=32,
                            threads=2,
                            seconds=options.throughput_seconds,
                        )
                        entry.runs.setdefault(endpoint_name, []).append(rps)
                        entry.errors += errors
                        served += rps * options.throughput_seconds
                    used = cpu_seconds(processes, name) - started
                    entry.cpu_us.setdefault(endpoint_name, []).append(used / served * 1e6)
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
        "The spread: the throughput cost of each round (the medians of that round's runs).",
        "",
        "| endpoint | off req/s | on req/s | throughput cost | cost by round | off CPU µs/req "
        "| on CPU µs/req | CPU cost | goal |",
        "|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    per_round = options.throughput_runs
    for name in MEASURED:
        cost = 1 - on.rps(name) / off.rps(name) if off.rps(name) else 0.0
        cpu_cost = on.cpu(name) / off.cpu(name) - 1 if off.cpu(name) else 0.0
        verdict = "✅" if cost <= GOAL and cpu_cost <= GOAL else "❌"  # both within the goal
        goal = f"≤ {GOAL:.0%} {verdict}" if name in {"bulk", "ofrep-bulk"} else "—"
        off_runs, on_runs = off.runs.get(name, []), on.runs.get(name, [])
        by_round = []
        for start in range(0, min(len(off_runs), len(on_runs)), per_round):
            round_off = statistics.median(off_runs[start : start + per_round])
            round_on = statistics.median(on_runs[start : start + per_round])
            by_round.append(f"{1 - round_on / round_off:+.1%}" if round_off else "-")
        lines.append(
            f"| {name} | {off.rps(name):,.0f} | {on.rps(name):,.0f} | {cost:+.1%} "
            f"| {', '.join(by_round)} | {off.cpu(name):,.0f} | {on.cpu(name):,.0f} "
            f"| {cpu_cost:+.1%} | {goal} |"
        )
    lines += [
        "",
        f"Errors: {off.errors} off, {on.errors} on. `flagship_evaluations_total` at the last "
        f"scrape (metrics on, last round): {on.counted:,.0f}.",
        "",
    ]
    return lines
