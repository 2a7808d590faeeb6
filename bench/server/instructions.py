"""Instructions per request: what counting and metrics cost, whatever else the machine is doing.

Run from the repository root::

    .venv/bin/python -m bench.server.instructions [--requests N] [--repeat K] [--markdown PATH]

Throughput on a shared 2-core virtual machine swings by 10-20 % between runs of the same code,
more than the 5 % that issue 14 allows counting and metrics each. valgrind's callgrind counts the
instructions a process executes instead: the same code, input and settings give nearly the same
count whatever else runs beside it. Not exactly: Redis messages of other processes on the same
server reach the child's listener thread, and garbage collection and thread switches vary; the
spread between repeats is printed (a few per cent here).

For each variant (Prometheus metrics and evaluation counting each on or off) and each endpoint
(REST bulk and OFREP bulk of 200 flags, OFREP single), a child process sets Django up with the
production settings the throughput benchmark uses (``bench.server.run.environment``: PostgreSQL,
Redis, metrics in multiprocess mode as under gunicorn) and calls the WSGI application in-process:
no socket, no gunicorn, no load generator. After a warm-up, callgrind's instrumentation is turned
on (``callgrind_control -i on``) for N requests (2000), with the flushes of the consumers that are
on where a worker at full load makes them (the metrics flush every 400 requests, about a second;
the counting flush into Redis every 2000, about 5 s), and turned off. The figure is
instructions / N; the cost of a feature is the ratio between two variants that differ in it alone.

Needs valgrind (``apt-get install -y valgrind``), PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

os.environ.setdefault("BENCH_DATABASE", "flagship_bench_instructions")  # beside bench.server.run

import argparse
import io
import json
import re
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, NamedTuple

from .run import CONTEXT, PYTHON, ROOT, environment, machine, manage, recreate_database

ENDPOINTS = {
    "bulk": "/api/v1/evaluate",
    "ofrep-bulk": "/ofrep/v1/evaluate/flags",
    "single": "/ofrep/v1/evaluate/flags/email-suffix-085",
}
# name -> (FLAGSHIP_METRICS_ENABLED, FLAGSHIP_COUNT_EVALUATIONS)
VARIANTS = {
    "neither": ("false", "false"),
    "counting": ("false", "true"),
    "metrics": ("true", "false"),
    "both": ("true", "true"),  # as deployed
}
# (feature, variant with it, variant without it): each feature's cost alone and on top of the other
COSTS = (
    ("counting", "counting", "neither"),
    ("metrics", "metrics", "neither"),
    ("counting, with metrics on", "both", "metrics"),
    ("metrics, with counting on", "both", "counting"),
)
GOAL = 0.05
WARMUP = 50
# A worker serves about 400 bulk requests a second at full load on this machine (bench/RESULTS.md:
# about 1,100 req/s over 3 workers). The flushes are due every second (metrics) and every 5 s
# (counting): in requests, at full load, where the measured window puts them.
METRICS_FLUSH_EVERY = 400
COUNT_FLUSH_EVERY = 2000
COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


# --- The child: one variant, one endpoint, under callgrind --------------------------------------
class Caller(NamedTuple):
    """One request to an in-process WSGI application, and the flushes of its consumers."""

    call: Callable[[], None]
    flush_metrics: Callable[[], object]
    flush_counts: Callable[[], object]
    metrics_on: bool
    counting_on: bool


def wsgi_environ(method: str, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The WSGI environ of a JSON request from loopback, with ``headers``."""
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "QUERY_STRING": "",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()},
    }


def caller(path: str, server_key: str, application_name: str = "full") -> Caller:
    """Set up ``application_name`` in this process; a caller of ``path`` (see :func:`child`).

    ``application_name``: ``full`` (Django's handler, every middleware), ``lean`` (the
    application gunicorn serves, ``flagship.wsgi``) or ``bare`` (``bench.server.bare_wsgi``).
    A path starting with ``GET `` is asked with ``GET`` and, for the ruleset, the current ETag
    in ``If-None-Match`` (a 304).
    """
    method, path = ("GET", path[4:]) if path.startswith("GET ") else ("POST", path)
    if application_name == "bare":
        from bench.server.bare_wsgi import application  # noqa: PLC0415

        def flush_metrics() -> object:  # nothing of FlagShip's to flush
            return None

        flush_counts = flush_metrics
        metrics_on = counting_on = False
    else:
        import django  # noqa: PLC0415  # the child sets Django up; the parent never does

        django.setup()
        from django.core.handlers.wsgi import WSGIHandler  # noqa: PLC0415

        from flags import conf  # noqa: PLC0415
        from flags.evaluation import counting  # noqa: PLC0415
        from flagship import metrics  # noqa: PLC0415

        if application_name == "lean":
            from flagship.wsgi import application  # noqa: PLC0415
        else:
            application = WSGIHandler()
        flush_metrics, flush_counts = metrics.flush, counting.flush
        metrics_on, counting_on = conf.metrics_enabled(), conf.count_evaluations()
    body = json.dumps({"context": CONTEXT}).encode() if method == "POST" else b""
    etag = ""

    def call() -> None:
        nonlocal etag
        environ = wsgi_environ(method, path, body, {"X-API-Key": server_key})
        if etag:
            environ["HTTP_IF_NONE_MATCH"] = etag
        answered: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> Any:
            answered.append((status, headers))
            return None

        chunks = application(environ, start_response)
        b"".join(chunks)
        getattr(chunks, "close", lambda: None)()
        status, headers = answered[0]
        if path.endswith("ruleset") and not etag:
            etag = dict(headers)["ETag"]  # from now on, 304s
        elif not status.startswith(("200", "304")):
            raise SystemExit(f"{path} answered {status}")

    return Caller(call, flush_metrics, flush_counts, metrics_on, counting_on)


def child(path: str, requests: int, server_key: str, application_name: str = "full") -> None:
    """Warm up, then N requests and the flushes with instrumentation on (``--child``)."""
    call, flush_metrics, flush_counts, metrics_on, counting_on = caller(
        path, server_key, application_name
    )
    for _ in range(WARMUP):
        call()
    flush_counts()
    flush_metrics()
    toggle = [shutil.which("callgrind_control") or "callgrind_control", "-i"]
    subprocess.run([*toggle, "on", str(os.getpid())], check=True, capture_output=True)  # noqa: S603
    for number in range(1, requests + 1):
        call()
        if metrics_on and number % METRICS_FLUSH_EVERY == 0:
            flush_metrics()  # the flusher thread's, once a second (settles counting's too)
        if counting_on and number % COUNT_FLUSH_EVERY == 0:
            flush_counts()  # a request's, every FLAGSHIP_COUNT_FLUSH_SECONDS (5 s)
    subprocess.run([*toggle, "off", str(os.getpid())], check=True, capture_output=True)  # noqa: S603


# --- The parent ----------------------------------------------------------------------------------
def instructions(  # noqa: PLR0917  # a child's whole argv
    env: dict[str, str],
    variant: str,
    endpoint: str,
    requests: int,
    key: str,
    application: str = "full",
) -> int:
    """Instructions of N requests (and the flushes) of one variant, endpoint and application."""
    metrics_on, counting_on = VARIANTS[variant]
    with tempfile.TemporaryDirectory(prefix="flagship-instructions-") as directory:
        multiprocess = Path(directory) / "prometheus"
        multiprocess.mkdir()
        child_env = {
            **env,
            "FLAGSHIP_METRICS_ENABLED": metrics_on,
            "FLAGSHIP_METRICS_TOKEN": "instructions-" + "t0ken" * 4,
            "FLAGSHIP_COUNT_EVALUATIONS": counting_on,
            # Only the flushes the child makes itself, at the end of the measured window.
            "FLAGSHIP_METRICS_FLUSH_SECONDS": "86400",
            "FLAGSHIP_COUNT_FLUSH_SECONDS": "86400",
            "PROMETHEUS_MULTIPROC_DIR": str(multiprocess),  # as under gunicorn
            # valgrind runs some 50 times slower: a key's few seconds in process memory would
            # expire within the window and weigh 50 times what it weighs at full speed.
            "FLAGSHIP_KEY_LOCAL_CACHE_SECONDS": "3600",
            "PYTHONHASHSEED": "0",
        }
        result = subprocess.run(  # noqa: S603  # the benchmark's own argv
            [
                shutil.which("valgrind") or "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={directory}/callgrind.out",
                PYTHON,
                "-m",
                "bench.server.instructions",
                "--child",
                {**ENDPOINTS, **PATH_ENDPOINTS}[endpoint],
                str(requests),
                key,
                application,
            ],
            cwd=ROOT,
            env=child_env,
            capture_output=True,
            text=True,
            check=False,
        )
    found = COLLECTED.search(result.stderr)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"{variant} {endpoint} {application}: {result.stderr[-2000:]}")
    return int(found.group(1))


def report(counts: dict[tuple[str, str], list[float]], requests: int, repeat: int) -> list[str]:
    """The Markdown: millions of instructions per request, then each feature's cost."""

    def median(variant: str, endpoint: str) -> float:
        return statistics.median(counts[variant, endpoint])

    lines = [
        "## Instructions per request: counting and metrics (issue 14)",
        "",
        f"`.venv/bin/python -m bench.server.instructions --requests {requests} --repeat {repeat}`: "
        f"callgrind's instruction count of {requests} requests served in-process by the WSGI "
        "application with production settings, with the flushes of the consumers that are on "
        f"(metrics every {METRICS_FLUSH_EVERY} requests, counting every {COUNT_FLUSH_EVERY}); "
        f"millions of instructions per request, median of {repeat} (spread: min-max).",
        "",
        "| variant (metrics, counting) | " + " | ".join(ENDPOINTS) + " |",
        "|---|" + "---:|" * len(ENDPOINTS),
    ]
    for variant, (metrics_on, counting_on) in VARIANTS.items():
        cells = []
        for endpoint in ENDPOINTS:
            runs = [count / 1e6 for count in counts[variant, endpoint]]
            cells.append(f"{statistics.median(runs):.3f} ({min(runs):.3f}-{max(runs):.3f})")
        lines.append(f"| {variant} ({metrics_on}, {counting_on}) | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Cost of each feature (goal: at most {GOAL:.0%} on the bulk endpoints):",
        "",
        "| feature | " + " | ".join(ENDPOINTS) + " |",
        "|---|" + "---:|" * len(ENDPOINTS),
    ]
    for feature, with_it, without in COSTS:
        cells = []
        for endpoint in ENDPOINTS:
            cost = median(with_it, endpoint) / median(without, endpoint) - 1
            mark = (" ✅" if cost <= GOAL else " ❌") if endpoint != "single" else ""
            cells.append(f"{cost:+.1%}{mark}")
        lines.append(f"| {feature} | " + " | ".join(cells) + " |")
    lines += ["", machine(), ""]
    return lines


# --- The lean path against the full stack and the bare ceiling (issue 16) ------------------------
PATH_ENDPOINTS = {
    "ruleset-304": "GET /api/v1/ruleset",
    "ceiling": "GET /ceiling",
}
# (application, endpoint): the bare Django app serves only its constant view.
PATH_JOBS = (
    ("bare", "ceiling"),
    *(
        (app, endpoint)
        for app in ("full", "lean")
        for endpoint in ("ruleset-304", "single", "bulk")
    ),
)


def measure_paths(
    env: dict[str, str], args: argparse.Namespace, key: str
) -> dict[Any, list[float]]:
    """Millions of instructions per request of every ``PATH_JOBS`` entry, ``--repeat`` times."""
    counts: dict[Any, list[float]] = {}
    jobs = [job for _ in range(args.repeat) for job in PATH_JOBS]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = [
            (job, pool.submit(instructions, env, "both", job[1], args.requests, key, job[0]))
            for job in jobs
        ]
        for job, future in futures:
            counts.setdefault(job, []).append(future.result() / args.requests / 1e6)
            print(f"{job[0]} {job[1]}: done", file=sys.stderr)
    return counts


def paths_report(counts: dict[Any, list[float]], args: argparse.Namespace) -> list[str]:
    """The Markdown of ``--paths``: instructions per request and the ratio to the bare ceiling."""
    bare = statistics.median(counts["bare", "ceiling"])
    lines = [
        "## Instructions per request: the lean path, the full stack and bare Django (issue 16)",
        "",
        f"`.venv/bin/python -m bench.server.instructions --paths --requests {args.requests} "
        f"--repeat {args.repeat}`: callgrind's instruction count of {args.requests} requests "
        "served in-process (no socket, no gunicorn, no load generator) by Django alone with one "
        "constant-JSON view (`bench.server.bare_wsgi`), by the full middleware stack "
        "(`WSGIHandler`) and by the application gunicorn serves (`flagship.wsgi`: the lean "
        "path), with production settings, metrics and counting on; millions of instructions per "
        "request, median (min-max). Bare / endpoint is what a throughput ratio against the bare "
        "ceiling would be if the server and the load generator cost nothing.",
        "",
        "| application | endpoint | M instructions / request | bare / endpoint |",
        "|---|---|---:|---:|",
    ]
    for job in PATH_JOBS:
        runs = counts[job]
        middle = statistics.median(runs)
        lines.append(
            f"| {job[0]} | {job[1]} | {middle:.3f} ({min(runs):.3f}-{max(runs):.3f}) "
            f"| {bare / middle:.2f} |"
        )
    lines.append("")
    for endpoint in ("ruleset-304", "single", "bulk"):
        full = statistics.median(counts["full", endpoint])
        lean = statistics.median(counts["lean", endpoint])
        lines.append(f"- {endpoint}: the lean path runs {1 - lean / full:.0%} fewer instructions.")
    lines += ["", machine(), ""]
    return lines


@contextmanager
def seeded(args: argparse.Namespace, prefix: str) -> Iterator[tuple[dict[str, Any], str]]:
    """The run's environment and the server key of 200 flags in a new database; then dropped.

    ``args``: ``--postgres`` and ``--redis`` (``bench.server.run.environment``).
    """
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    env: dict[str, Any] = environment(args, workdir)
    recreate_database(args.postgres)
    try:
        manage(env, "manage.py", "migrate", "--no-input", "-v", "0")
        fixture = json.loads(manage(env, "-m", "bench.server.fixture", "200"))
        yield env, str(fixture["sizes"]["200"]["server_key"])
    finally:
        recreate_database(args.postgres, drop_only=True)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Seed, measure every variant and endpoint (two at a time), print the report."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--child"]:
        child(arguments[1], int(arguments[2]), arguments[3], *arguments[4:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests (2000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant (1)")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--markdown", help="also write the report to this file")
    parser.add_argument(
        "--paths",
        action="store_true",
        help="the lean path against the full stack and the bare Django ceiling (issue 16)",
    )
    args = parser.parse_args(arguments)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("bench.server.instructions needs valgrind: apt-get install -y valgrind")
    with seeded(args, "flagship-instructions-") as (env, key):
        if args.paths:
            text = "\n".join(paths_report(measure_paths(env, args, key), args))
            print(text)
            if args.markdown:
                Path(args.markdown).write_text(text + "\n", encoding="utf-8")
            return 0
        jobs = [
            (variant, endpoint)
            for _ in range(args.repeat)
            for variant in VARIANTS
            for endpoint in ENDPOINTS
        ]
        counts: dict[tuple[str, str], list[float]] = {}
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            futures = [
                (job, pool.submit(instructions, env, *job, args.requests, key)) for job in jobs
            ]
            for (variant, endpoint), future in futures:
                counts.setdefault((variant, endpoint), []).append(future.result() / args.requests)
                print(f"{variant} {endpoint}: done", file=sys.stderr)
    text = "\n".join(report(counts, args.requests, args.repeat))
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
