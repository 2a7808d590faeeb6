"""Benchmark FlagShip's server: throughput and latency against the stack's ceiling, and propagation.

Run from the repository root::

    .venv/bin/python -m bench.server.run [--quick] [--no-sweep] [--scale-flags N ...]
                                         [--counting | --no-counting] [--metrics] [--balance]
                                         [--markdown PATH]

One run, on loopback only:

1. drops and recreates the PostgreSQL database ``flagship_bench`` (``--postgres``), migrates it,
   and imports (``bench.server.fixture``, ``flags.services.importing``) the engine benchmark's W4
   mix of 200 flags into one project and, repeated with distinct keys, 10 000 flags into another
   (``--scale-flags``; 2 000 with ``--quick``), each with a server and a client key;
2. starts FlagShip (``flagship.wsgi``), FlagShip's constant view (``bench.server.ceiling``: a
   trivial Django view returning constant bytes, FlagShip's settings and middleware) and the bare
   ceiling (``bench.server.bare_wsgi``: Django alone, no FlagShip settings, no middleware, no
   database) under gunicorn with the repository's ``gunicorn.conf.py``, and the change stream
   (``flagship.asgi``) under uvicorn, each on a free port;
3. measures each endpoint with ``wrk``: requests/s at 32 and at 4 keep-alive connections with
   the server's cores busy (its CPU from ``/proc``, ``bench.server.balance``) and connections per
   worker, p50/p99 at 1 connection, on the 200-flag environment; ratios against the bare ceiling
   and issue 16's targets;
4. scale: the bulk and single-flag evaluations again on the larger environment(s), with the
   per-flag cost and the ratio to 200 flags;
5. opens 1 and then 1 000 Server-Sent Events subscribers and times, for each of K changes made
   through ``flags.services.flag_toggle`` (``bench.server.changer``), the delay from the commit to
   each subscriber receiving the new version; then the same through the SDK: one
   ``FlagShipClient`` in local mode, from the commit to the client holding the new ruleset;
6. gunicorn sweep (unless ``--no-sweep``): FlagShip restarted with a few (worker class, workers,
   threads) combinations, OFREP single and bulk evaluation at 32 connections on each;
7. evaluation counting (unless ``--no-counting``; alone with ``--counting``): bulk and single
   evaluation on two FlagShips, counting on and off, in alternating rounds
   (``bench.server.counting``);
8. prints a Markdown report (and writes it with ``--markdown``), then stops every process it
   started and drops the database.

``--balance`` runs only the worker-model sweep of ``bench.server.balance`` (connections per worker
at 4 and 32 connections for gthread, gthread with ``reuse_port``, ``flagship.workers
.ReusePortThreadWorker`` and sync).

Needs ``wrk`` (``apt-get install -y wrk``), PostgreSQL and Redis.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import asyncio
import http.client
import json
import logging
import os
import platform
import re
import resource
import runpy
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
import redis

from flagship.processes import Processes, free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DATABASE = os.environ.get("BENCH_DATABASE", "flagship_bench")  # another name: runs side by side
FLAG_COUNT = 200  # the W4 mix: every measurement but the scale section
SDK_TARGET_MS = 150.0  # propagation p99 through the SDK (issue 6)
CONTEXT = {
    "targetingKey": "user-42",
    "email": "ada@example.com",
    "country": "NL",
    "plan": "pro",
    "age": 36,
    "beta": True,
    "app_version": "2.4.1",
}
SECRET = "bench-" + "k3y-n0t-f0r-pr0duct10n-" * 3  # production settings want >= 50 characters


@dataclass(frozen=True)
class Options:
    """Durations and sizes of one run."""

    throughput_seconds: int
    throughput_runs: int
    latency_seconds: int
    subscribers: tuple[int, ...]
    changes: int
    interval: float
    scale_flags: tuple[int, ...]
    sweep_seconds: int
    sweep_runs: int
    sweep_rounds: int = 1


DEFAULT = Options(5, 5, 5, (1, 1000), 20, 0.25, (10_000,), 5, 2)
QUICK = Options(2, 1, 1, (1, 50), 5, 0.2, (2_000,), 2, 1)


THREADED_WORKER = "flagship.workers.ReusePortThreadWorker"


@dataclass(frozen=True)
class Config:
    """One gunicorn configuration of the sweep."""

    worker_class: str
    workers: int
    threads: int
    rule: str  # the same configuration as a rule of the number of cores

    @property
    def label(self) -> str:
        """``gthread 5x4`` or ``sync 5``."""
        if self.worker_class == "sync":
            return f"sync {self.workers}"
        return f"{self.worker_class.rsplit('.', 1)[-1]} {self.workers}x{self.threads}"


def sweep_configs(cores: int) -> tuple[Config, ...]:
    """The combinations measured, as rules of the core count (2 cores: 2x1 3x2 5x4 4x8 sync 5).

    Threaded rows use the deployed worker class (``ReusePortThreadWorker``: gthread with a socket
    per worker; issue 5's sweep ran gunicorn's stock gthread).
    """
    threaded = THREADED_WORKER
    return (
        Config(threaded, cores, 1, "cores x 1 thread"),
        Config(threaded, cores + 1, 2, "(cores + 1) x 2 threads"),
        Config(threaded, 2 * cores + 1, 4, "(2 x cores + 1) x 4 threads"),
        Config(threaded, 2 * cores, 8, "2 x cores x 8 threads"),
        Config("sync", 2 * cores + 1, 1, "sync, 2 x cores + 1"),
    )


@dataclass
class SweepResult:
    """One configuration's figures."""

    config: Config
    measured: dict[str, Measured] = field(default_factory=dict)
    rss_mb: float = 0.0
    failure: str = ""


@dataclass(frozen=True)
class Endpoint:
    """One measured request."""

    label: str
    method: str
    path: str
    headers: dict[str, str]
    body: str = ""
    status: int = 200
    ceiling: bool = False
    name: str = ""  # what it is, whatever the flag count: "bulk", "ofrep-bulk", "single", ...
    server: str = "flagship"  # "flagship", "ceiling" (FlagShip's constant view), "bare" or "quiet"


@dataclass
class Measured:
    """wrk's figures for one endpoint."""

    endpoint: Endpoint
    rps: float = 0.0
    rps_runs: list[float] = field(default_factory=list)
    errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    p99_at_32_ms: float = 0.0
    p99_runs: list[float] = field(default_factory=list)
    response_bytes: int = 0
    cores: float = 0.0  # the server's cores busy at 32 connections (median of the runs)
    rps_4: float = 0.0  # at 4 keep-alive connections (median of the runs)
    rps_4_runs: list[float] = field(default_factory=list)
    cores_4: float = 0.0
    p99_at_4_ms: float = 0.0
    spreads: list[str] = field(default_factory=list)  # connections per worker, each run @32
    spreads_4: list[str] = field(default_factory=list)

    @property
    def per_core(self) -> float:
        """req/s per busy server core at 32 connections."""
        return self.rps / self.cores if self.cores else 0.0

    @property
    def per_core_4(self) -> float:
        """req/s per busy server core at 4 connections."""
        return self.rps_4 / self.cores_4 if self.cores_4 else 0.0

    @property
    def ratio_4(self) -> float:
        """4-connection req/s over 32-connection req/s."""
        return self.rps_4 / self.rps if self.rps else 0.0


@dataclass
class Propagation:
    """Delays from commit to each subscriber seeing each change."""

    subscribers: int
    changes: int
    delays_ms: list[float] = field(default_factory=list)
    missed: int = 0
    connect_seconds: float = 0.0
    server: str = "stock"
    failure: str = ""


# --- processes ----------------------------------------------------------------------------------


def manage(env: dict[str, str], *args: str) -> str:
    """Run a Python module or ``manage.py`` command; its stdout, or an error with its output."""
    result = subprocess.run(  # noqa: S603  # the benchmark's own argv
        [PYTHON, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# --- database -----------------------------------------------------------------------------------


def recreate_database(admin_url: str, drop_only: bool = False) -> None:
    """Drop ``flagship_bench`` (closing its connections) and, unless ``drop_only``, create it."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        if not drop_only:
            connection.execute(f"CREATE DATABASE {DATABASE}")


def database_url(admin_url: str) -> str:
    """``admin_url`` with its database replaced by ``flagship_bench``."""
    base = admin_url.rsplit("/", 1)[0] if admin_url.count("/") > 2 else admin_url
    return f"{base}/{DATABASE}"


# --- HTTP load ----------------------------------------------------------------------------------


def check_response(port: int, endpoint: Endpoint) -> int:
    """Send the request once; raise unless it answers the expected status. Returns body size."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = endpoint.body.encode() if endpoint.body else None
    connection.request(endpoint.method, endpoint.path, body=body, headers=endpoint.headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    if response.status != endpoint.status:
        raise RuntimeError(
            f"{endpoint.label}: expected {endpoint.status}, got {response.status}: {data[:300]!r}"
        )
    return len(data)


def lua_script(endpoint: Endpoint, directory: Path) -> Path:
    """A wrk script setting the method, headers and body of ``endpoint``."""
    lines = [f"wrk.method = {json.dumps(endpoint.method)}"]
    if endpoint.body:
        lines.append(f"wrk.body = {json.dumps(endpoint.body)}")
    for name, value in endpoint.headers.items():
        lines.append(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}")
    path = directory / f"{re.sub(r'[^a-z0-9]+', '-', endpoint.label.lower())}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk_argv(
    wrk_path: str, url: str, script: Path, connections: int, seconds: int, *, threads: int = 2
) -> list[str]:
    """The command line of wrk (no more threads than connections: wrk refuses that)."""
    threads = max(1, min(threads, connections))
    return [
        wrk_path,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]


def wrk(
    wrk_path: str, url: str, script: Path, *, connections: int, threads: int, seconds: int
) -> tuple[float, int, dict[str, float]]:
    """Run wrk; requests/s, error count (non-2xx/3xx and socket errors), latency percentiles."""
    argv = wrk_argv(wrk_path, url, script, connections, seconds, threads=threads)
    output = subprocess.run(  # noqa: S603  # wrk, found on PATH
        argv, capture_output=True, text=True, check=True
    ).stdout
    return wrk_output(output)


def wrk_output(output: str) -> tuple[float, int, dict[str, float]]:
    """The requests/s, error count (non-2xx/3xx and socket errors) and latency percentiles."""
    rps_match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps_match is None:
        raise RuntimeError(f"wrk output not understood:\n{output}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        errors += sum(int(value) for value in socket_errors.groups())
    percentiles = {
        match.group(1): _milliseconds(match.group(2))
        for match in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.MULTILINE)
    }
    return float(rps_match.group(1)), errors, percentiles


def measure(  # the run's settings, passed on
    wrk_path: str,
    port: int,
    endpoint: Endpoint,
    options: Options,
    scripts: Path,
    *,
    runs: int | None = None,
    seconds: int | None = None,
    latency: bool = True,
    master: int | None = None,
) -> Measured:
    """requests/s at 32 connections (median of ``runs``), then p50/p99 at 1 connection.

    With ``master`` (the gunicorn master's pid) each run also reads the server's CPU from
    ``/proc`` (cores busy) and its connections per worker, and the runs are repeated at 4
    keep-alive connections.
    """
    from .balance import measured_run  # noqa: PLC0415  # balance imports this module

    print(f"Measuring {endpoint.label} ...", file=sys.stderr)
    result = Measured(endpoint, response_bytes=check_response(port, endpoint))
    script = lua_script(endpoint, scripts)
    url = f"http://127.0.0.1:{port}{endpoint.path}"
    wrk(
        wrk_path, url, script, connections=32, threads=2, seconds=1
    )  # warm-up: every worker compiles and caches
    errors = 0
    tails = []
    count, duration = runs or options.throughput_runs, seconds or options.throughput_seconds
    if master is not None:
        for connections in (32, 4):
            measured = [
                measured_run(wrk_path, port, master, script, endpoint.path, connections, duration)
                for _ in range(count)
            ]
            errors += sum(run.errors for run in measured)
            rps_runs = [run.rps for run in measured]
            cores = statistics.median(run.cores for run in measured)
            p99 = statistics.median(run.p99_ms for run in measured)
            spreads = [run.spread for run in measured]
            if connections == 32:
                result.rps_runs, result.cores, result.p99_at_32_ms = rps_runs, cores, p99
                result.spreads = spreads
            else:
                result.rps_4_runs, result.cores_4, result.p99_at_4_ms = rps_runs, cores, p99
                result.spreads_4 = spreads
        result.rps = statistics.median(result.rps_runs)
        result.rps_4 = statistics.median(result.rps_4_runs)
    else:
        for _ in range(count):
            # New connections each run: gunicorn's workers split them afresh (see README).
            rps, run_errors, loaded = wrk(
                wrk_path, url, script, connections=32, threads=2, seconds=duration
            )
            result.rps_runs.append(rps)
            tails.append(loaded.get("99", 0.0))
            errors += run_errors
        result.rps = statistics.median(result.rps_runs)
        result.p99_at_32_ms = statistics.median(tails)
    if not latency:
        result.errors = errors
        return result
    # The one connection's worker is warmed first: wrk corrects latencies for coordinated
    # omission, so a single cold request would stand for dozens of slow ones in the p99.
    wrk(wrk_path, url, script, connections=1, threads=1, seconds=1)
    _, latency_errors, percentiles = wrk(
        wrk_path, url, script, connections=1, threads=1, seconds=options.latency_seconds
    )
    result.errors = errors + latency_errors
    result.p50_ms, result.p99_ms = percentiles["50"], percentiles["99"]
    return result


# --- change propagation --------------------------------------------------------------------------


_VERSION = re.compile(rb'"version":\s*(\d+)')


class Subscriber(asyncio.Protocol):
    """One SSE client on a raw socket: records when each version first arrives (``time.time``)."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.seen: dict[int, float] = {}
        self.first: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the request."""
        if not isinstance(transport, asyncio.Transport):
            raise TypeError("a stream socket is expected")
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        """Take the time first, then look for versions in the bytes received."""
        now = time.time()
        self.buffer += data
        # Keep an unfinished tail (a version split across reads); versions are short.
        for match in _VERSION.finditer(self.buffer):
            version = int(match.group(1))
            self.seen.setdefault(version, now)
            if not self.first.done():
                self.first.set_result(version)
        self.buffer = self.buffer[-32:]

    def connection_lost(self, exc: Exception | None) -> None:
        """A stream that ends before its first event fails the run."""
        if not self.first.done():
            self.first.set_exception(ConnectionError("stream closed before its first event"))

    def close(self) -> None:
        """Close the socket."""
        if self.transport is not None:
            self.transport.close()

    def seen_at(self, version: int) -> float | None:
        """When a version >= ``version`` first arrived (notices may coalesce)."""
        times = [at for seen, at in self.seen.items() if seen >= version]
        return min(times) if times else None


def changer_argv(flag: str, options: Options, project: str) -> list[str]:
    """The command that makes the measured changes (``bench.server.changer``)."""
    return [
        PYTHON,
        "-m",
        "bench.server.changer",
        flag,
        str(options.changes),
        str(options.interval),
        project,
    ]


async def propagation(
    port: int,
    key: str,
    count: int,
    *,
    options: Options,
    env: dict[str, str],
    flag: str,
    project: str,
    server: str,
) -> Propagation:
    """Open ``count`` streams, make the changes, and collect commit-to-delivery delays."""
    print(f"Propagation, {server} stream server, {count} subscribers ...", file=sys.stderr)
    request = (
        f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {key}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    subscribers: list[Subscriber] = []
    started = time.monotonic()
    batch = 50
    try:
        try:
            for offset in range(0, count, batch):
                opened = []
                for _ in range(min(batch, count - offset)):
                    _, protocol = await loop.create_connection(
                        lambda: Subscriber(request), "127.0.0.1", port
                    )
                    opened.append(protocol)
                subscribers.extend(opened)
                await asyncio.wait_for(asyncio.gather(*(s.first for s in opened)), 60)
        except (OSError, TimeoutError) as error:
            await asyncio.sleep(1)
            ok = sum(1 for s in subscribers if s.first.done() and not s.first.exception())
            return Propagation(
                count,
                0,
                connect_seconds=time.monotonic() - started,
                server=server,
                failure=f"only {ok} of {count} streams opened ({type(error).__name__}: {error})",
            )
        connect_seconds = time.monotonic() - started
        changer = await asyncio.create_subprocess_exec(
            *changer_argv(flag, options, project),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        if changer.stdout is None:
            raise RuntimeError("no pipe from bench.server.changer")
        commits: list[tuple[int, float]] = []
        async for raw in changer.stdout:
            parts = raw.decode().split()
            if len(parts) == 2:
                commits.append((int(parts[0]), float(parts[1])))
        if await changer.wait() != 0:
            raise RuntimeError("bench.server.changer failed")
        await asyncio.sleep(1.0)  # stragglers
        result = Propagation(count, len(commits), connect_seconds=connect_seconds, server=server)
        for version, committed in commits:
            for subscriber in subscribers:
                at = subscriber.seen_at(version)
                if at is None:
                    result.missed += 1
                else:
                    result.delays_ms.append((at - committed) * 1000)
        return result
    finally:
        for subscriber in subscribers:
            subscriber.close()


def sdk_propagation(
    port: int,
    key: str,
    *,
    options: Options,
    env: dict[str, str],
    flag: str,
    project: str,
) -> Propagation:
    """One SDK client in local mode; delays from each commit to the client holding the version.

    The client follows the stream and downloads the ruleset from the stream server (uvicorn serves
    the whole application), as a deployment routing both paths to one host would; the delay ends
    when the client's ``changed`` listener runs, i.e. after the download, the compilation and the
    swap.
    """
    print("Propagation through the SDK (1 client) ...", file=sys.stderr)
    from flagship_sdk import FlagShipClient  # noqa: PLC0415  # the benchmark's only SDK use

    quiet = logging.getLogger("bench.server.sdk")
    quiet.setLevel(logging.CRITICAL)
    quiet.propagate = False
    seen: dict[int, float] = {}

    def changed(event: Any) -> None:
        if event.type == "changed" and event.version is not None:
            seen.setdefault(event.version, time.time())

    client = FlagShipClient(
        f"http://127.0.0.1:{port}", key, send_evaluation_counts=False, logger=quiet
    )
    client.add_listener(changed)
    try:
        started = time.monotonic()
        if not client.wait_until_ready(30):
            return Propagation(1, 0, server="sdk", failure="the client never became ready")
        deadline = time.monotonic() + 30
        while not client.streaming and time.monotonic() < deadline:
            time.sleep(0.05)
        if not client.streaming:
            return Propagation(1, 0, server="sdk", failure="the client's stream never connected")
        time.sleep(0.5)
        output = subprocess.run(  # noqa: S603  # the benchmark's own argv
            changer_argv(flag, options, project),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        time.sleep(1.0)  # stragglers
        commits = [
            (int(parts[0]), float(parts[1]))
            for parts in (line.split() for line in output.splitlines())
            if len(parts) == 2
        ]
        result = Propagation(
            1, len(commits), connect_seconds=time.monotonic() - started, server="sdk"
        )
        for version, committed in commits:
            at = seen.get(version)
            if at is None:
                result.missed += 1
            else:
                result.delays_ms.append((at - committed) * 1000)
        return result
    finally:
        client.close()


# --- report -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


# Issue 16's targets: share of the bare ceiling's requests/s at 32 connections, by endpoint name
# (issue 5's were 0.60 bulk and OFREP bulk, 0.75 single, 0.90 the 304, against FlagShip's own
# constant view, which hid the cost of its middleware).
TARGETS = {"bulk": 0.50, "single": 0.70, "ruleset-304": 0.85}
FOUR_VS_32_TARGET = 0.90  # 4 keep-alive connections' req/s over 32's, every endpoint
BULK_P99_TARGET_MS = 1.5  # bulk evaluation (200 flags) p99 at 1 connection
# The endpoints measured again at each size (scale) and for each gunicorn configuration (sweep).
SCALED = {
    "bulk": "POST /api/v1/evaluate (bulk)",
    "ofrep-bulk": "POST /ofrep/v1/evaluate/flags (bulk)",
    "single": "OFREP single flag",
}
SWEPT = ("single", "bulk")
# Measured again on FlagShip with its access line off ("quiet"): the line's share of the two
# endpoints whose targets the line's cost decides (bench/RESULTS.md, issue 16).
QUIET = ("single", "ruleset-304")


def wrk_version() -> str:
    """``wrk 4.1.0`` or so."""
    path = shutil.which("wrk")
    if path is None:
        return "wrk"
    output = subprocess.run(  # noqa: S603  # wrk, found on PATH
        [path, "-v"], capture_output=True, text=True, check=False
    ).stdout
    return " ".join(output.split()[:2]) or "wrk"


def machine() -> str:
    """A line describing the machine and versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load generator {wrk_version()} on the "
        "same machine"
    )


def report(
    results: list[Measured],
    streams: list[Propagation],
    *,
    options: Options,
    info: dict[str, object],
    workers: str,
    scale: dict[int, dict[str, Measured]],
    sweep: list[SweepResult],
) -> str:
    """The Markdown report."""
    ceiling = next(r for r in results if r.endpoint.ceiling)
    sizes = info["sizes"]
    assert isinstance(sizes, dict)  # noqa: S101  # the fixture's JSON
    base = sizes[str(FLAG_COUNT)]
    lines = [
        "### Requests",
        "",
        f"gunicorn (`gunicorn.conf.py`: {workers}) for the four servers: FlagShip, FlagShip's "
        "own constant view (FlagShip's settings and middleware, one view returning constant "
        "bytes: `bench.server.ceiling`), the bare ceiling (Django alone: no FlagShip "
        "settings, no middleware, no database; `bench.server.bare_wsgi`) and FlagShip with its "
        "access line off (`DJANGO_ACCESS_LOG_LEVEL=WARNING`: no `request.finished` line for a "
        'request answered without an error; rows "access line off", no target). '
        f"{base['flags']} flags in the environment "
        f"(the engine benchmark's W4 mix: {base['rules']} rules, segments, splits, "
        f"prerequisites; imported in {base['import_seconds']} s); single flag "
        f"`{info['single_flag']}` (boolean, one email-suffix rule); "
        f"wrk, {options.throughput_runs} x {options.throughput_seconds} s at 32 and at 4 "
        "keep-alive connections (2 threads, new connections each run; median) and "
        f"{options.latency_seconds} s at 1 connection, after a 1 s warm-up. Cores busy: CPU "
        "seconds of the server's gunicorn master and workers (`/proc/<pid>/stat`, utime + "
        "stime) per wall second of the run; the load generator runs on the same cores. vs "
        "bare: req/s at 32 over the bare ceiling's.",
        "",
        "| endpoint | bytes | req/s @32 | runs min-max | cores busy @32 | req/s per core @32 "
        "| vs bare | target | req/s @4 | cores busy @4 | req/s per core @4 | 4 vs 32 "
        "| p50 @1 (ms) | p99 @1 (ms) | p99 @32 (ms) | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        ratio = result.rps / ceiling.rps if ceiling.rps else 0.0
        target = TARGETS.get(result.endpoint.name)
        mark = "✅ met" if target is not None and ratio >= target else "❌ missed"
        verdict = "—" if target is None else f"≥ {target:.2f}x {mark}"
        four = f"{result.ratio_4:.0%}" + (
            ""
            if result.endpoint.server != "flagship"
            else (" ✅" if result.ratio_4 >= FOUR_VS_32_TARGET else " ❌")
        )
        lines.append(
            f"| {result.endpoint.label} | {result.response_bytes:,} | {result.rps:,.0f} | "
            f"{min(result.rps_runs):,.0f}-{max(result.rps_runs):,.0f} | {result.cores:.2f} | "
            f"{result.per_core:,.0f} | {ratio:.2f}x | {verdict} | {result.rps_4:,.0f} | "
            f"{result.cores_4:.2f} | {result.per_core_4:,.0f} | {four} | "
            f"{result.p50_ms:.2f} | {result.p99_ms:.2f} | {result.p99_at_32_ms:.2f} | "
            f"{result.errors} |"
        )
    lines += ["", *targets_report(results, ceiling), ""]
    lines += [
        "Connections per worker one second into each run (most loaded worker first), "
        "32 connections | 4 connections:",
        "",
        *(
            f"- {result.endpoint.label}: {' '.join(result.spreads)} | {' '.join(result.spreads_4)}"
            for result in results
        ),
        "",
    ]
    lines += [
        *scale_report(results, scale, sizes),
        *propagation_report(streams, options),
        *sweep_report(sweep, options),
        f"Machine: {machine()}.",
    ]
    return "\n".join(lines) + "\n"


def targets_report(results: list[Measured], ceiling: Measured) -> list[str]:
    """Issue 16's targets, each marked met or missed."""
    by_name = {result.endpoint.name: result for result in results}
    labels = {
        "bulk": "Bulk evaluation of 200 flags",
        "single": "OFREP single",
        "ruleset-304": "Ruleset 304",
    }
    lines = ["Targets (issue 16):", ""]
    for name, target in TARGETS.items():
        result = by_name.get(name)
        if result is None:
            continue
        ratio = result.rps / ceiling.rps if ceiling.rps else 0.0
        lines.append(
            f"- {labels.get(name, name)} ≥ {target:.2f}x the bare ceiling: {ratio:.2f}x "
            f"({result.rps:,.0f} / {ceiling.rps:,.0f} req/s) "
            + ("✅ met" if ratio >= target else "❌ missed")
        )
    flagship = [r for r in results if r.endpoint.server == "flagship" and r.rps_4]
    if flagship:
        worst = min(flagship, key=lambda r: r.ratio_4)
        met = worst.ratio_4 >= FOUR_VS_32_TARGET
        lines.append(
            f"- 4 keep-alive connections ≥ {FOUR_VS_32_TARGET:.0%} of the 32-connection "
            f"throughput, every FlagShip endpoint: lowest {worst.ratio_4:.0%} "
            f"({worst.endpoint.label}); "
            + ", ".join(f"{r.endpoint.name} {r.ratio_4:.0%}" for r in flagship)
            + (" ✅ met" if met else " ❌ missed")
        )
    bulk = by_name.get("bulk")
    if bulk is not None:
        lines.append(
            f"- Bulk evaluation (200 flags) p99 at 1 connection ≤ {BULK_P99_TARGET_MS} ms: "
            f"{bulk.p99_ms:.2f} ms (p50 {bulk.p50_ms:.2f} ms) "
            + ("✅ met" if bulk.p99_ms <= BULK_P99_TARGET_MS else "❌ missed")
        )
    return lines


def scale_report(
    results: list[Measured], scale: dict[int, dict[str, Measured]], sizes: dict[str, Any]
) -> list[str]:
    """The scale section: the same requests at 200 flags and at each larger size."""
    small = {r.endpoint.name: r for r in results}
    lines = [
        "### Scale",
        "",
        "The bulk and single-flag evaluations of the table above (200 flags) again on an "
        "environment of more flags: the W4 archetypes repeated with other seeds and distinct "
        "keys ("
        + ", ".join(
            f"{size:,} flags, {sizes[str(size)]['rules']:,} rules, imported in "
            f"{sizes[str(size)]['import_seconds']} s"
            for size in scale
        )
        + "), same context, same durations. Per-flag cost: the growth of the p50 at 1 "
        "connection per added flag; ratio: the larger size's p50 over the 200-flag p50 "
        "(linear growth without fixed cost would be the flag ratio, flat would be 1.0).",
        "",
        "| endpoint | flags | bytes | req/s @32 | p50 @1 (ms) | per-flag cost (µs) "
        "| p50 ratio | req/s ratio | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label in SCALED.items():
        first = small[name]
        lines.append(
            f"| {label} | {FLAG_COUNT:,} | {first.response_bytes:,} | "
            f"{first.rps:,.0f} | {first.p50_ms:.2f} | — | 1.0 | 1.0 | {first.errors} |"
        )
        for size, measured in scale.items():
            other = measured[name]
            per_flag_us = (other.p50_ms - first.p50_ms) * 1000 / (size - FLAG_COUNT)
            p50_ratio = other.p50_ms / first.p50_ms if first.p50_ms else 0.0
            rps_ratio = first.rps / other.rps if other.rps else 0.0
            lines.append(
                f"| {label} | {size:,} | {other.response_bytes:,} | "
                f"{other.rps:,.0f} | {other.p50_ms:.2f} | {per_flag_us:.2f} | "
                f"{p50_ratio:.1f} | {rps_ratio:.1f} | {other.errors} |"
            )
    lines += [
        "",
        "req/s ratio: 200-flag req/s over the larger size's (how many times slower).",
        "",
    ]
    return lines


def propagation_report(streams: list[Propagation], options: Options) -> list[str]:
    """The change propagation section."""
    lines = [
        "### Change propagation",
        "",
        f"{options.changes} changes (`flags.services.flag_toggle`, {options.interval} s apart); "
        "delay from the commit to each subscriber receiving the new version over "
        "`GET /api/v1/stream` (uvicorn, 1 process, Redis pub/sub).",
        "",
        "| stream server | subscribers | deliveries | missed | p50 (ms) | p99 (ms) | max (ms) "
        "| connect all (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for stream in streams:
        label = (
            "FlagShip (`flagship.asgi`), raw SSE subscribers"
            if stream.server == "stock"
            else "through the SDK: `FlagShipClient` (local mode) holding the new ruleset"
        )
        if stream.failure:
            lines.append(
                f"| {label} | {stream.subscribers:,} | — | — | — | — | — | "
                f"failed: {stream.failure} |"
            )
            continue
        p50 = f"{percentile(stream.delays_ms, 0.5):.1f}" if stream.delays_ms else "—"
        p99 = f"{percentile(stream.delays_ms, 0.99):.1f}" if stream.delays_ms else "—"
        top = f"{max(stream.delays_ms):.1f}" if stream.delays_ms else "—"
        lines.append(
            f"| {label} | {stream.subscribers:,} | {len(stream.delays_ms):,} | {stream.missed} | "
            f"{p50} | {p99} | {top} | {stream.connect_seconds:.1f} |"
        )
    stock = [s for s in streams if s.server == "stock"]
    largest = max(stock, key=lambda s: s.subscribers) if stock else None
    if largest is not None:
        if largest.delays_ms and not largest.failure:
            p99_value = percentile(largest.delays_ms, 0.99)
            met = p99_value <= 100 and largest.missed == 0
            verdict = f"{p99_value:.1f} ms"
        else:
            met, verdict = False, "not measurable (streams failed to open)"
        lines += [
            "",
            f"Propagation p99 with {largest.subscribers:,} subscribers on FlagShip's own stream "
            f"server: {verdict} (target ≤ 100 ms with 1 000 {'✅' if met else '❌'}).",
        ]
    for sdk in (s for s in streams if s.server == "sdk"):
        if sdk.delays_ms and not sdk.failure:
            sdk_p99 = percentile(sdk.delays_ms, 0.99)
            ok = sdk_p99 < SDK_TARGET_MS and sdk.missed == 0
            lines.append(
                f"Propagation p99 through the SDK (commit → stream event → `GET /api/v1/ruleset` "
                f"→ compiled and swapped in the client): {sdk_p99:.1f} ms (target < "
                f"{SDK_TARGET_MS:g} ms {'✅' if ok else '❌'})."
            )
    return [*lines, ""]


def sweep_report(sweep: list[SweepResult], options: Options) -> list[str]:
    """The gunicorn sweep section, with the best configuration by the two endpoints' req/s."""
    if not sweep:
        return []
    lines = [
        "### gunicorn sweep",
        "",
        f"FlagShip restarted with each configuration (everything else as in `gunicorn.conf.py`), "
        f"{os.cpu_count()} cores; {options.sweep_rounds} round(s) over the configurations, each "
        f"wrk {options.sweep_runs} x {options.sweep_seconds} s at 32 connections after a 1 s "
        "warm-up (median req/s over all runs, median p99 at 32), on the 200-flag "
        "environment. Memory: resident set of gunicorn's master and workers after the run. "
        "Score: geometric mean of the two req/s, relative to the best.",
        "",
        "| configuration | rule | single req/s @32 | single p99 @32 (ms) | bulk req/s @32 "
        "| bulk p99 @32 (ms) | memory (MB) | score | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    scores = {
        id(entry): statistics.geometric_mean([entry.measured[name].rps for name in SWEPT])
        for entry in sweep
        if not entry.failure and all(entry.measured[name].rps > 0 for name in SWEPT)
    }
    best = max(scores.values(), default=0.0)
    for entry in sweep:
        if entry.failure:
            lines.append(
                f"| {entry.config.label} | {entry.config.rule} | failed: {entry.failure} "
                "| | | | | | |"
            )
            continue
        single, bulk = entry.measured["single"], entry.measured["bulk"]
        score = scores.get(id(entry), 0.0) / best if best else 0.0
        lines.append(
            f"| {entry.config.label} | {entry.config.rule} | {single.rps:,.0f} | "
            f"{single.p99_at_32_ms:.1f} | {bulk.rps:,.0f} | {bulk.p99_at_32_ms:.1f} | "
            f"{entry.rss_mb:,.0f} | {score:.0%} | {single.errors + bulk.errors} |"
        )
    winner = max(sweep, key=lambda entry: scores.get(id(entry), 0.0))
    if scores:
        lines += ["", f"Best: {winner.config.label} ({winner.config.rule})."]
    return [*lines, ""]


# --- main ---------------------------------------------------------------------------------------


def endpoints(server_key: str, single_flag: str, flags: int) -> list[Endpoint]:
    """The measured requests (version-independent: the 304 uses the current ETag, set later)."""
    json_headers = {"X-API-Key": server_key, "Content-Type": "application/json"}
    body = json.dumps({"context": CONTEXT})
    return [
        Endpoint(
            "bare ceiling (Django alone, constant JSON)",
            "GET",
            "/ceiling",
            {},
            ceiling=True,
            name="bare",
            server="bare",
        ),
        Endpoint(
            "FlagShip's constant view (its settings and middleware)",
            "GET",
            "/ceiling",
            {},
            name="ceiling",
            server="ceiling",
        ),
        Endpoint(
            f"POST /api/v1/evaluate (bulk, {flags:,} flags)",
            "POST",
            "/api/v1/evaluate",
            json_headers,
            body,
            name="bulk",
        ),
        Endpoint(
            "POST /ofrep/v1/evaluate/flags (bulk)",
            "POST",
            "/ofrep/v1/evaluate/flags",
            json_headers,
            body,
            name="ofrep-bulk",
        ),
        Endpoint(
            f"POST /ofrep/v1/evaluate/flags/{single_flag} (single)",
            "POST",
            f"/ofrep/v1/evaluate/flags/{single_flag}",
            json_headers,
            body,
            name="single",
        ),
        Endpoint(
            "GET /api/v1/ruleset (full)",
            "GET",
            "/api/v1/ruleset",
            {"X-API-Key": server_key},
            name="ruleset",
        ),
    ]


def etag_of(port: int, server_key: str) -> str:
    """The current ETag of the ruleset."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/api/v1/ruleset", headers={"X-API-Key": server_key})
    response = connection.getresponse()
    response.read()
    connection.close()
    etag = response.getheader("ETag")
    if not etag:
        raise RuntimeError("GET /api/v1/ruleset sent no ETag")
    return etag


def start_servers(processes: Processes, env: dict[str, str]) -> tuple[int, int, int, int]:
    """Start the three gunicorn servers and the stream server (uvicorn); their ports.

    FlagShip, FlagShip's constant view (``bench.server.ceiling``), the stream, the bare ceiling.
    """
    app_port, ceiling_port, stream_port, bare_port = (free_port() for _ in range(4))
    gunicorn = [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    processes.start(
        "bare",
        [*gunicorn, "bench.server.bare_wsgi:application"],
        {
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{bare_port}",
            "DJANGO_SETTINGS_MODULE": "bench.server.bare_settings",
        },
    )
    processes.start(
        "flagship",
        [*gunicorn, "flagship.wsgi:application"],
        {**env, "GUNICORN_BIND": f"127.0.0.1:{app_port}"},
    )
    processes.start(
        "ceiling",
        [*gunicorn, "bench.server.ceiling:application"],
        {**env, "GUNICORN_BIND": f"127.0.0.1:{ceiling_port}"},
    )
    processes.start(
        "stream",
        [
            PYTHON,
            "-m",
            "uvicorn",
            "flagship.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(stream_port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--backlog",
            "4096",
        ],
        env,
    )
    for name, port in (
        ("flagship", app_port),
        ("ceiling", ceiling_port),
        ("stream", stream_port),
        ("bare", bare_port),
    ):
        wait_http(port, "/healthz", processes, name)
    return app_port, ceiling_port, stream_port, bare_port


def master_pid(processes: Processes, name: str) -> int:
    """The pid of a started child (gunicorn's master)."""
    return next(child.pid for child_name, child in processes.children if child_name == name)


def start_gunicorn(
    processes: Processes, env: dict[str, str], name: str, overrides: dict[str, str]
) -> int:
    """Start FlagShip under gunicorn (``gunicorn.conf.py``) on a free loopback port; the port."""
    port = free_port()
    processes.start(
        name,
        [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py", "flagship.wsgi:application"],
        {**env, **overrides, "GUNICORN_BIND": f"127.0.0.1:{port}"},
    )
    return port


def start_flagship(
    processes: Processes, env: dict[str, str], name: str, config: Config
) -> tuple[int, str]:
    """Start FlagShip alone under gunicorn with one sweep configuration; its port, or a failure."""
    port = start_gunicorn(
        processes,
        env,
        name,
        {
            "GUNICORN_WORKER_CLASS": config.worker_class,
            "GUNICORN_REUSE_PORT": "1" if config.worker_class == THREADED_WORKER else "0",
            "GUNICORN_WORKERS": str(config.workers),
            "GUNICORN_THREADS": str(config.threads),
        },
    )
    try:
        wait_http(port, "/healthz", processes, name)
    except RuntimeError as error:
        return port, str(error).splitlines()[0]
    return port, ""


def run_sweep(
    processes: Processes,
    env: dict[str, str],
    requests: dict[str, Endpoint],
    *,
    options: Options,
    wrk_path: str,
    workdir: Path,
) -> list[SweepResult]:
    """Each configuration in turn: start, measure single and bulk at 32 connections, stop.

    With several rounds the configurations are interleaved (each round visits every one), so a
    change of the machine's load during the sweep spreads over all of them; the figures are the
    medians over every round's runs.
    """
    results = [SweepResult(config) for config in sweep_configs(os.cpu_count() or 1)]
    for round_number in range(options.sweep_rounds):
        for entry in results:
            if entry.failure:
                continue
            config = entry.config
            print(
                f"Sweep {round_number + 1}/{options.sweep_rounds}: {config.label} ...",
                file=sys.stderr,
            )
            name = f"sweep-{config.worker_class}-{config.workers}x{config.threads}"
            port, entry.failure = start_flagship(processes, env, name, config)
            try:
                if not entry.failure:
                    for endpoint_name in SWEPT:
                        _merge(
                            entry,
                            measure(
                                wrk_path,
                                port,
                                requests[endpoint_name],
                                options,
                                workdir,
                                runs=options.sweep_runs,
                                seconds=options.sweep_seconds,
                                latency=False,
                            ),
                        )
                    entry.rss_mb = max(entry.rss_mb, processes.rss_mb(name))
            except (RuntimeError, subprocess.CalledProcessError) as error:
                entry.failure = str(error).splitlines()[0][:120]
            finally:
                processes.stop_one(name)
    return results


def _merge(entry: SweepResult, measured: Measured) -> None:
    """Add one round's runs to a configuration's figures (medians over all runs)."""
    name = measured.endpoint.name
    previous = entry.measured.get(name)
    if previous is None:
        measured.p99_runs = [measured.p99_at_32_ms]
        entry.measured[name] = measured
        return
    previous.rps_runs += measured.rps_runs
    previous.p99_runs.append(measured.p99_at_32_ms)
    previous.errors += measured.errors
    previous.rps = statistics.median(previous.rps_runs)
    previous.p99_at_32_ms = statistics.median(previous.p99_runs)


def gunicorn_defaults(env: dict[str, str]) -> str:
    """The worker class, workers and threads ``gunicorn.conf.py`` gives under ``env``."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return f"{conf['worker_class']}, workers {conf['workers']}, threads {conf['threads']}"


def environment(args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    """The environment of every process the run starts."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flagship.settings",
        "DJANGO_ENV": "production",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": SECRET,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ENV_FILE": str(workdir / "no.env"),
        "DATABASE_URL": database_url(args.postgres),
        "REDIS_URL": args.redis,
        # Rate limits at their production defaults (flags.conf): a refusal would show as an
        # error, and one instance at full speed must stay well under a server key's limit.
        "PYTHONUNBUFFERED": "1",
    }


def measure_everything(  # noqa: PLR0917  # the run's state, passed on
    args: argparse.Namespace,
    options: Options,
    processes: Processes,
    env: dict[str, str],
    wrk_path: str,
    workdir: Path,
) -> str:
    """Seed, start the servers, measure; the report."""
    sizes = (FLAG_COUNT, *(size for size in options.scale_flags if size != FLAG_COUNT))
    if args.sweep or args.outage or args.counting or args.metrics or args.balance:
        sizes = (FLAG_COUNT,)
    print(f"Creating the database and importing {sizes} flags ...", file=sys.stderr)
    recreate_database(args.postgres)
    redis.Redis.from_url(args.redis).flushdb()
    manage(env, "manage.py", "migrate", "--noinput")
    info = json.loads(manage(env, "-m", "bench.server.fixture", *map(str, sizes)))
    app_port, ceiling_port, stream_port, bare_port = start_servers(processes, env)
    workers = gunicorn_defaults(env)
    single_flag = str(info["single_flag"])

    server_key = str(info["sizes"][str(FLAG_COUNT)]["server_key"])
    requests = endpoints(server_key, single_flag, FLAG_COUNT)
    requests.append(
        Endpoint(
            "GET /api/v1/ruleset with If-None-Match (304)",
            "GET",
            "/api/v1/ruleset",
            {"X-API-Key": server_key, "If-None-Match": etag_of(app_port, server_key)},
            status=304,
            name="ruleset-304",
        )
    )
    if args.sweep:
        by_name = {endpoint.name: endpoint for endpoint in requests}
        swept = run_sweep(
            processes, env, by_name, options=options, wrk_path=wrk_path, workdir=workdir
        )
        return "\n".join([*sweep_report(swept, options), f"Machine: {machine()}."]) + "\n"
    if args.balance:
        from . import balance  # noqa: PLC0415  # balance imports this module

        for name in ("flagship", "ceiling", "bare", "stream"):  # the variants run alone
            processes.stop_one(name)
        rounds = args.balance_rounds or (1 if args.quick else 2)
        by_name = {endpoint.name: endpoint for endpoint in requests}
        balanced = balance.run_balance(processes, env, by_name, options, wrk_path, workdir, rounds)
        return "\n".join(balance.balance_report(balanced, options, rounds)) + "\n"
    if args.outage:
        lines = outage_section(args, options, processes, env, wrk_path, workdir, requests)
        return "\n".join([*lines, f"Machine: {machine()}."]) + "\n"
    if args.counting:
        lines = counting_section(args, options, processes, env, wrk_path, workdir, requests)
        return "\n".join([*lines, f"Machine: {machine()}."]) + "\n"
    if args.metrics:
        lines = metrics_section(args, options, processes, env, wrk_path, workdir, requests)
        return "\n".join([*lines, f"Machine: {machine()}."]) + "\n"
    # FlagShip again with its access line off (DJANGO_ACCESS_LOG_LEVEL=WARNING): the single flag
    # and the 304 beside their ordinary rows, the line's share of them (the misses' profile).
    quiet_port = free_port()
    processes.start(
        "quiet",
        [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py", "flagship.wsgi:application"],
        {**env, "GUNICORN_BIND": f"127.0.0.1:{quiet_port}", "DJANGO_ACCESS_LOG_LEVEL": "WARNING"},
    )
    wait_http(quiet_port, "/healthz", processes, "quiet")
    requests += [
        replace(
            endpoint,
            label=f"{endpoint.label}, access line off",
            name=f"{endpoint.name}-quiet",
            server="quiet",
        )
        for endpoint in requests
        if endpoint.name in QUIET
    ]
    ports = {"flagship": app_port, "ceiling": ceiling_port, "bare": bare_port, "quiet": quiet_port}
    results = [
        measure(
            wrk_path,
            ports[endpoint.server],
            endpoint,
            options,
            workdir,
            master=master_pid(processes, endpoint.server),
        )
        for endpoint in requests
    ]

    scale = {
        size: {
            endpoint.name: measure(wrk_path, app_port, endpoint, options, workdir)
            for endpoint in endpoints(
                str(info["sizes"][str(size)]["server_key"]), single_flag, size
            )
            if endpoint.name in SCALED
        }
        for size in sizes[1:]
    }

    streams = [
        asyncio.run(
            propagation(
                stream_port,
                server_key,
                count,
                options=options,
                env=env,
                flag=str(info["toggle_flag"]),
                project=str(info["toggle_project"]),
                server="stock",
            )
        )
        for count in options.subscribers
    ]
    streams.append(
        sdk_propagation(
            stream_port,
            server_key,
            options=options,
            env=env,
            flag=str(info["toggle_flag"]),
            project=str(info["toggle_project"]),
        )
    )

    sweep: list[SweepResult] = []
    if not args.no_sweep:
        by_name = {endpoint.name: endpoint for endpoint in requests}
        sweep = run_sweep(
            processes, env, by_name, options=options, wrk_path=wrk_path, workdir=workdir
        )
    text = report(
        results,
        streams,
        options=options,
        info=info,
        workers=workers,
        scale=scale,
        sweep=sweep,
    )
    if not args.no_counting:
        counted = counting_section(args, options, processes, env, wrk_path, workdir, requests)
        text += "\n" + "\n".join(counted) + "\n"
    if args.no_outage:
        return text
    lines = outage_section(args, options, processes, env, wrk_path, workdir, requests)
    return text + "\n" + "\n".join(lines) + "\n"


def outage_section(  # noqa: PLR0917  # the run's state, passed on
    args: argparse.Namespace,
    options: Options,
    processes: Processes,
    env: dict[str, str],
    wrk_path: str,
    workdir: Path,
    requests: list[Endpoint],
) -> list[str]:
    """Evaluation and ``/readyz`` with PostgreSQL, Redis and both cut (``bench.server.outage``)."""
    from . import outage  # noqa: PLC0415  # outage imports this module

    results = outage.run_outages(
        processes,
        env,
        requests,
        outage.measure_state(wrk_path, options, workdir),
        database_url(args.postgres),
        args.redis,
    )
    return outage.outage_report(results, gunicorn_defaults(env))


def counting_section(  # noqa: PLR0917  # the run's state, passed on
    args: argparse.Namespace,
    options: Options,
    processes: Processes,
    env: dict[str, str],
    wrk_path: str,
    workdir: Path,
    requests: list[Endpoint],
) -> list[str]:
    """Bulk and single evaluation with counting on and off (``bench.server.counting``)."""
    from . import counting  # noqa: PLC0415  # counting imports this module

    rounds = args.counting_rounds or (2 if options is QUICK else 3)
    by_name = {endpoint.name: endpoint for endpoint in requests}
    result = counting.run_counting(processes, env, by_name, options, wrk_path, workdir, rounds)
    return counting.counting_report(result, rounds, options)


def metrics_section(  # noqa: PLR0917  # the run's state, passed on
    args: argparse.Namespace,
    options: Options,
    processes: Processes,
    env: dict[str, str],
    wrk_path: str,
    workdir: Path,
    requests: list[Endpoint],
) -> list[str]:
    """Throughput with Prometheus metrics on and off (``bench.server.metrics_cost``)."""
    from . import metrics_cost  # noqa: PLC0415  # metrics_cost imports this module

    processes.stop_one("flagship")  # the variants run alone on the machine
    processes.stop_one("ceiling")
    processes.stop_one("bare")
    rounds = args.metrics_rounds or (1 if args.quick else 3)
    by_name = {endpoint.name: endpoint for endpoint in requests}
    results = metrics_cost.run_metrics_cost(
        processes, env, by_name, options, wrk_path, workdir, rounds
    )
    return [*metrics_cost.metrics_report(results, options, rounds), gunicorn_defaults(env) + "."]


def run(args: argparse.Namespace) -> str:
    """The whole benchmark; returns the report."""
    options = QUICK if args.quick else DEFAULT
    if args.scale_flags:
        options = replace(options, scale_flags=tuple(args.scale_flags))
    if args.sweep_rounds or args.sweep:
        options = replace(options, sweep_rounds=args.sweep_rounds or 2)
    wrk_path = shutil.which("wrk")
    if wrk_path is None:
        raise SystemExit(
            "bench.server needs wrk, the HTTP load generator: apt-get install -y wrk "
            "(Debian/Ubuntu) or brew install wrk (macOS)."
        )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(options.subscribers) * 2 + 1024
    if soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))  # children inherit it

    workdir = Path(tempfile.mkdtemp(prefix="flagship-bench-"))
    processes = Processes(workdir)
    redis_client = redis.Redis.from_url(args.redis)
    env = environment(args, workdir)
    try:
        return measure_everything(args, options, processes, env, wrk_path, workdir)
    finally:
        processes.stop()
        try:
            redis_client.flushdb()
            recreate_database(args.postgres, drop_only=True)
        except Exception as error:  # cleanup must not hide the real error
            print(f"cleanup: {error}", file=sys.stderr)
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"Logs kept in {workdir}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run, print (and write) the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short smoke run, not a measurement")
    parser.add_argument("--markdown", metavar="PATH", help="also write the report to PATH")
    parser.add_argument(
        "--scale-flags",
        type=int,
        nargs="+",
        metavar="N",
        help="flag counts of the scale section, multiples of 200 (default: 10000; quick: 2000)",
    )
    parser.add_argument(
        "--no-sweep", action="store_true", help="skip the gunicorn configuration sweep"
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="only the gunicorn sweep (200 flags; no ceiling table, scale or propagation)",
    )
    parser.add_argument(
        "--sweep-rounds",
        type=int,
        metavar="N",
        help="rounds over the sweep's configurations (default 1; 2 with --sweep)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL allowed to create databases (default: %(default)s)",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="a Redis database the run may flush (default: %(default)s)",
    )
    parser.add_argument(
        "--outage",
        action="store_true",
        help="only the outage section (PostgreSQL, Redis and both cut; 200 flags)",
    )
    parser.add_argument("--no-outage", action="store_true", help="skip the outage section")
    parser.add_argument(
        "--counting",
        action="store_true",
        help="only evaluation counting on and off (bulk and single; 200 flags)",
    )
    parser.add_argument(
        "--no-counting", action="store_true", help="skip the counting on/off section"
    )
    parser.add_argument(
        "--counting-rounds",
        type=int,
        metavar="N",
        help="alternating rounds of the counting section (default 3; quick: 2)",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="only the Prometheus metrics on/off comparison (200 flags; issue 14)",
    )
    parser.add_argument(
        "--metrics-rounds",
        type=int,
        metavar="N",
        help="rounds of the metrics comparison, each variant once per round (default 3; quick 1)",
    )
    parser.add_argument(
        "--balance",
        action="store_true",
        help="only the worker-model sweep: connections per worker, 4 and 32 connections "
        "(200 flags; issue 16)",
    )
    parser.add_argument(
        "--balance-rounds",
        type=int,
        metavar="N",
        help="rounds over the balance sweep's worker models (default 2; quick 1)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    args = parser.parse_args(argv)
    command = " ".join([".venv/bin/python -m bench.server.run", *(argv or sys.argv[1:])])
    text = f"Command: `{command}`\n\n" + run(args)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
