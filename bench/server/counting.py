"""The cost of counting evaluations (issue 14): bulk evaluation with counting on and off.

Two FlagShips run side by side under gunicorn (``gunicorn.conf.py``), the same database, Redis
and settings but ``FLAGSHIP_COUNT_EVALUATIONS`` ``true`` in one and ``false`` in the other.
Rounds alternate which one is measured first; each round measures REST bulk, OFREP bulk and
OFREP single at 32 connections on each (requests/s, median over every round's runs). With
counting on, each process flushes its counts into Redis every ``FLAGSHIP_COUNT_FLUSH_SECONDS``
(default 5 s) from a request, as in production; no worker moves them to PostgreSQL during the run
(it would load both sides alike). The cost is ``1 - on / off``; the target is at most 5 %.

Prometheus metrics are off on both sides: the evaluations tally (``flags.evaluation.tally``) is
shared by counting and metrics, so with metrics on counting would only add its flush. Off, the
tally is counting's alone and its whole cost shows.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flagship.processes import Processes, wait_http

if TYPE_CHECKING:
    from .run import Endpoint, Options

COUNTED = ("bulk", "ofrep-bulk", "single")
TARGET = 0.05
MODES = (("on", "true"), ("off", "false"))


@dataclass
class CountingResult:
    """requests/s of each endpoint, every run, with counting on and off."""

    runs: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # endpoint→mode→runs
    labels: dict[str, str] = field(default_factory=dict)
    errors: int = 0


def run_counting(  # noqa: PLR0917  # the run's state, passed on
    processes: Processes,
    env: dict[str, str],
    requests: dict[str, Endpoint],
    options: Options,
    wrk_path: str,
    workdir: Path,
    rounds: int,
) -> CountingResult:
    """Start both FlagShips, measure them in alternating rounds, stop them."""
    from .run import measure, start_gunicorn  # noqa: PLC0415  # run imports this module

    ports: dict[str, int] = {}
    for mode, value in MODES:
        name = f"counting-{mode}"
        overrides = {"FLAGSHIP_COUNT_EVALUATIONS": value, "FLAGSHIP_METRICS_ENABLED": "false"}
        port = start_gunicorn(processes, env, name, overrides)
        wait_http(port, "/healthz", processes, name)
        ports[mode] = port
    result = CountingResult()
    try:
        for number in range(rounds):
            order = [mode for mode, _ in MODES]
            if number % 2:
                order.reverse()
            for mode in order:
                print(f"Counting {mode}, round {number + 1}/{rounds} ...", file=sys.stderr)
                for endpoint_name in COUNTED:
                    endpoint = requests[endpoint_name]
                    measured = measure(
                        wrk_path, ports[mode], endpoint, options, workdir, latency=False
                    )
                    result.labels[endpoint_name] = endpoint.label
                    runs = result.runs.setdefault(endpoint_name, {}).setdefault(mode, [])
                    runs.extend(measured.rps_runs)
                    result.errors += measured.errors
    finally:
        for mode, _ in MODES:
            processes.stop_one(f"counting-{mode}")
    return result


def counting_report(result: CountingResult, rounds: int, options: Options) -> list[str]:
    """The Markdown section: requests/s off and on, and the cost of counting."""
    lines = [
        "## Evaluation counting: on and off in the same run (issue 14)",
        "",
        f"Two FlagShips side by side, `FLAGSHIP_COUNT_EVALUATIONS` true and false (Prometheus "
        f"metrics off on both, so the shared evaluations tally is counting's alone); {rounds} "
        f"alternating rounds of {options.throughput_runs} x {options.throughput_seconds} s at 32 "
        "connections per endpoint and side; median requests/s. Target: counting costs ≤ 5 %.",
        "",
        "The spread: each round's cost (the medians of that round's runs), so a cost within the",
        "noise between rounds shows as such.",
        "",
        "| endpoint | counting off (req/s) | counting on (req/s) | cost | cost by round | |",
        "|---|---:|---:|---:|---|---|",
    ]
    per_round = options.throughput_runs
    for name in COUNTED:
        modes = result.runs.get(name, {})
        if "on" not in modes or "off" not in modes:
            continue
        off, on = statistics.median(modes["off"]), statistics.median(modes["on"])
        cost = 1 - on / off if off else 0.0
        rounds_cost = []
        for start in range(0, min(len(modes["off"]), len(modes["on"])), per_round):
            round_off = statistics.median(modes["off"][start : start + per_round])
            round_on = statistics.median(modes["on"][start : start + per_round])
            rounds_cost.append(f"{1 - round_on / round_off:+.1%}" if round_off else "-")
        mark = "✅" if cost <= TARGET else "❌"
        lines.append(
            f"| {result.labels[name]} | {off:,.0f} | {on:,.0f} | {cost:+.1%} "
            f"| {', '.join(rounds_cost)} | {mark} |"
        )
    lines += ["", f"Errors: {result.errors}.", ""]
    return lines
