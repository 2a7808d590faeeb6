"""Where an evaluation request's time goes, in process: the profile behind issue 16's misses.

Run from the repository root::

    .venv/bin/python -m bench.server.request_profile [--requests N] [--markdown PATH]

For the bare Django ceiling and for FlagShip's ruleset 304, OFREP single flag and bulk evaluation
of 200 flags, a child process sets up the application gunicorn serves (``flagship.wsgi``, or
``bench.server.bare_wsgi``) with the production settings of ``bench.server.run`` (PostgreSQL,
Redis, metrics in multiprocess mode, evaluation counting on) and calls it in-process, as
``bench.server.instructions`` does: no socket, no gunicorn, no load generator. After a warm-up:

1. N requests timed one by one (``perf_counter``), the consumers' flushes where a worker at full
   load makes them: microseconds per request (median, p99, max) and the garbage collections;
2. N requests under cProfile: each function's own time, summed by where the function lives
   (the SDK's engine, the evaluation views, the access line...). A built-in function's time
   (``dict.get``, ``mmh3.hash``...) goes to the places that called it, in proportion.

cProfile makes every Python call dearer, so its shares lean towards code of many small calls
(the engine); the timed figures are without it. What a request costs under gunicorn beyond these
(the server's per-request CPU in ``bench.server.run``) is the server's, the kernel's and the
load generator's share of the same cores.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

os.environ.setdefault("BENCH_DATABASE", "flagship_bench_request_profile")  # beside bench.server.run

import argparse
import cProfile
import gc
import json
import pstats
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from .instructions import (
    COUNT_FLUSH_EVERY,
    ENDPOINTS,
    METRICS_FLUSH_EVERY,
    PATH_ENDPOINTS,
    WARMUP,
    caller,
    seeded,
)
from .run import PYTHON, ROOT, machine

# (application, endpoint) in the report's order.
JOBS = (("bare", "ceiling"), ("lean", "ruleset-304"), ("lean", "single"), ("lean", "bulk"))
# Where a function lives -> its group; the first match of a path fragment wins.
GROUPS = (
    ("flagship_sdk/", "engine (flagship_sdk)"),
    ("<flagship-rule>", "engine (flagship_sdk)"),  # the engine's compiled conditions
    ("flags/evaluation/tally.py", "counting and evaluation metrics"),
    ("flags/evaluation/counting.py", "counting and evaluation metrics"),
    ("flags/evaluation/", "evaluation views, key, rate limit"),
    ("flags/delivery/", "evaluation views, key, rate limit"),
    ("flagship/logs.py", "access line"),
    ("flagship/access.py", "access line"),
    ("structlog/", "access line"),
    ("logging/", "access line"),
    ("json/", "JSON (standard library)"),
    ("flagship/wire.py", "wire path"),
    ("flagship/lean.py", "wire path"),
    ("flagship/metrics", "request metrics"),
    ("prometheus_client/", "request metrics"),
    ("redis/", "Redis client"),
    ("django/", "Django"),
    ("rest_framework/", "Django"),
    ("bench/server/", "the benchmark's caller"),
)
OTHER = "other (standard library, other packages)"


def group_of(filename: str) -> str:
    """The group of a function defined in ``filename``."""
    for fragment, group in GROUPS:
        if fragment in filename:
            return group
    return OTHER


def shares(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of own time per group; a built-in's time goes to its callers' groups."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]  # pstats' documented table
    totals: dict[str, float] = {}

    def add(group: str, seconds: float) -> None:
        totals[group] = totals.get(group, 0.0) + seconds

    for (filename, _line, _name), (_calls, _primitive, own, _cumulative, callers) in raw.items():
        if filename != "~":  # a Python function: its own group
            add(group_of(filename), own)
            continue
        edges = {caller: edge[2] for caller, edge in callers.items()}  # time spent per caller
        spent = sum(edges.values())
        if not edges or spent <= 0:
            add(OTHER, own)
            continue
        for (caller_file, _, _), seconds in edges.items():
            group = group_of(caller_file) if caller_file != "~" else OTHER
            add(group, own * seconds / spent)
    return totals


# --- The child: one application and endpoint ----------------------------------------------------
def child(path: str, requests: int, server_key: str, application_name: str) -> dict[str, Any]:
    """Warm up, time N requests, profile N more; the figures as a dictionary (``--child``)."""
    call, flush_metrics, flush_counts, metrics_on, counting_on = caller(
        path, server_key, application_name
    )

    def serve(number: int) -> None:
        call()
        if metrics_on and number % METRICS_FLUSH_EVERY == 0:
            flush_metrics()
        if counting_on and number % COUNT_FLUSH_EVERY == 0:
            flush_counts()

    for number in range(1, WARMUP + 1):
        serve(number)
    collections = sum(generation["collections"] for generation in gc.get_stats())
    timings = []
    for number in range(1, requests + 1):
        started = time.perf_counter()
        serve(number)
        timings.append((time.perf_counter() - started) * 1e6)
    collected = sum(generation["collections"] for generation in gc.get_stats()) - collections
    profiler = cProfile.Profile()
    profiler.enable()
    for number in range(1, requests + 1):
        serve(number)
    profiler.disable()
    stats = pstats.Stats(profiler)
    own = shares(stats)
    total = sum(own.values())
    timings.sort()
    return {
        "median_us": statistics.median(timings),
        "p99_us": timings[min(len(timings) - 1, int(len(timings) * 0.99))],
        "max_us": timings[-1],
        "collections": collected,
        "shares": {group: seconds / total for group, seconds in own.items()},
    }


# --- The parent ----------------------------------------------------------------------------------
def profile(env: dict[str, str], application: str, endpoint: str, requests: int, key: str) -> Any:
    """The child's figures for one application and endpoint."""
    with tempfile.TemporaryDirectory(prefix="flagship-profile-") as directory:
        multiprocess = Path(directory) / "prometheus"
        multiprocess.mkdir()
        child_env = {
            **env,
            "FLAGSHIP_METRICS_ENABLED": "true",
            "FLAGSHIP_METRICS_TOKEN": "profile-" + "t0ken" * 4,
            "FLAGSHIP_COUNT_EVALUATIONS": "true",
            # The child flushes where a worker at full load would (as bench.server.instructions).
            "FLAGSHIP_METRICS_FLUSH_SECONDS": "86400",
            "FLAGSHIP_COUNT_FLUSH_SECONDS": "86400",
            "PROMETHEUS_MULTIPROC_DIR": str(multiprocess),
        }
        log = Path(directory) / "child.log"  # the access lines: a file, as under bench.server.run
        with log.open("w") as lines:
            result = subprocess.run(  # noqa: S603  # the benchmark's own argv
                [
                    PYTHON,
                    "-m",
                    "bench.server.request_profile",
                    "--child",
                    {**ENDPOINTS, **PATH_ENDPOINTS}[endpoint],
                    str(requests),
                    key,
                    application,
                ],
                cwd=ROOT,
                env=child_env,
                stdout=subprocess.PIPE,
                stderr=lines,
                text=True,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"{application} {endpoint}: {log.read_text()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(figures: dict[tuple[str, str], Any], requests: int) -> list[str]:
    """The Markdown: time per request, then each group's share of it."""
    groups = sorted(
        {group for entry in figures.values() for group in entry["shares"]},
        key=lambda group: -max(entry["shares"].get(group, 0.0) for entry in figures.values()),
    )
    lines = [
        "## Where a request's time goes, in process (issue 16)",
        "",
        f"`.venv/bin/python -m bench.server.request_profile --requests {requests}`: each "
        "application called in-process (no socket, no gunicorn, no load generator) with "
        "production settings, metrics and counting on, the access lines to a file; "
        f"{requests} requests timed one by one after a warm-up, then {requests} under cProfile "
        "(own time by where the code lives; a built-in's time goes to its callers).",
        "",
        "| application | endpoint | µs / request (median) | p99 | max | GC runs |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (application, endpoint), entry in figures.items():
        lines.append(
            f"| {application} | {endpoint} | {entry['median_us']:.1f} | {entry['p99_us']:.1f} "
            f"| {entry['max_us']:.1f} | {entry['collections']} |"
        )
    header = " | ".join(f"{application} {endpoint}" for application, endpoint in figures)
    lines += [
        "",
        "Share of the profiled time:",
        "",
        f"| where | {header} |",
        "|---|" + "---:|" * len(figures),
    ]
    for group in groups:
        cells = " | ".join(f"{entry['shares'].get(group, 0.0):.0%}" for entry in figures.values())
        lines.append(f"| {group} | {cells} |")
    lines += ["", machine(), ""]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Seed, profile every job, print the report."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--child"]:
        measured = child(arguments[1], int(arguments[2]), arguments[3], arguments[4])
        print(json.dumps(measured))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per phase (5000)")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--markdown", help="also write the report to this file")
    args = parser.parse_args(arguments)
    figures: dict[tuple[str, str], Any] = {}
    with seeded(args, "flagship-profile-") as (env, key):
        for application, endpoint in JOBS:  # one at a time: the timings are wall-clock
            figures[application, endpoint] = profile(env, application, endpoint, args.requests, key)
            print(f"{application} {endpoint}: done", file=sys.stderr)
    text = "\n".join(report(figures, args.requests))
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
