"""Benchmark FlagShip's server: throughput and latency against the stack's ceiling, and propagation.

Run from the repository root::

    .venv/bin/python -m bench.server.run [--quick] [--markdown PATH]

One run, on loopback only:

1. drops and recreates the PostgreSQL database ``flagship_bench`` (``--postgres``), migrates it,
   seeds 200 flags (``bench.server.fixture``) and issues a server and a client key;
2. starts FlagShip (``flagship.wsgi``) and the ceiling (``bench.server.ceiling``: a trivial Django
   view returning constant bytes) under gunicorn with the repository's ``gunicorn.conf.py``, and
   the change stream (``flagship.asgi``) under uvicorn, each on a free port;
3. measures each endpoint with ``wrk``: requests/s at 32 connections, p50/p99 at 1 connection;
4. opens 1 and then 1 000 Server-Sent Events subscribers and times, for each of K changes made
   through ``flags.services.flag_toggle`` (``bench.server.changer``), the delay from the commit to
   each subscriber receiving the new version;
5. prints a Markdown report (and writes it with ``--markdown``), then stops every process it
   started and drops the database.

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
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field

import psycopg
import redis

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DATABASE = "flagship_bench"
FLAG_COUNT = 200
CONTEXT = {
    "targetingKey": "user-42",
    "email": "ada@example.com",
    "country": "NL",
    "plan": "pro",
    "age": 36,
    "beta": True,
    "app_version": "2.4.1",
}
SINGLE_FLAG = "new-checkout"
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


DEFAULT = Options(5, 3, 5, (1, 1000), 20, 0.25)
QUICK = Options(2, 1, 1, (1, 50), 5, 0.2)


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


@dataclass
class Measured:
    """wrk's figures for one endpoint."""

    endpoint: Endpoint
    rps: float = 0.0
    rps_runs: list[float] = field(default_factory=list)
    errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    response_bytes: int = 0


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


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Processes:
    """Child processes started in their own process group, stopped group by group."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> None:
        """Start ``argv`` with output to ``<logs>/<name>.log``."""
        log = (self.logs / f"{name}.log").open("wb")
        child = subprocess.Popen(  # noqa: S603  # the benchmark's own argv
            list(argv),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.children.append((name, child))

    def stop(self) -> None:
        """SIGTERM each child's process group, then SIGKILL what is left after 10 s."""
        for _, child in self.children:
            if child.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, child in self.children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        self.children.clear()

    def tail(self, name: str, lines: int = 30) -> str:
        """The end of a child's log, for error messages."""
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_http(port: int, path: str, processes: Processes, name: str, timeout: float = 60) -> None:
    """Wait until ``GET path`` answers (any status) on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{name} did not start on port {port}:\n{processes.tail(name)}")


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


def wrk(
    wrk_path: str, url: str, script: Path, *, connections: int, threads: int, seconds: int
) -> tuple[float, int, dict[str, float]]:
    """Run wrk; requests/s, error count (non-2xx/3xx and socket errors), latency percentiles."""
    argv = [wrk_path, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    output = subprocess.run(  # noqa: S603  # wrk, found on PATH
        [*argv, "-s", str(script), url], capture_output=True, text=True, check=True
    ).stdout
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


def measure(
    wrk_path: str, port: int, endpoint: Endpoint, options: Options, scripts: Path
) -> Measured:
    """requests/s at 32 connections, then p50/p99 at 1 connection."""
    result = Measured(endpoint, response_bytes=check_response(port, endpoint))
    script = lua_script(endpoint, scripts)
    url = f"http://127.0.0.1:{port}{endpoint.path}"
    wrk(
        wrk_path, url, script, connections=32, threads=2, seconds=1
    )  # warm-up: every worker compiles and caches
    errors = 0
    for _ in range(options.throughput_runs):
        # New connections each run: gunicorn's workers split them afresh (see README).
        rps, run_errors, _ = wrk(
            wrk_path, url, script, connections=32, threads=2, seconds=options.throughput_seconds
        )
        result.rps_runs.append(rps)
        errors += run_errors
    result.rps = statistics.median(result.rps_runs)
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


async def propagation(
    port: int,
    key: str,
    count: int,
    *,
    options: Options,
    env: dict[str, str],
    flag: str,
    server: str,
) -> Propagation:
    """Open ``count`` streams, make the changes, and collect commit-to-delivery delays."""
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
            PYTHON,
            "-m",
            "bench.server.changer",
            flag,
            str(options.changes),
            str(options.interval),
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


# --- report -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


TARGETS = {
    "POST /api/v1/evaluate (bulk, 200 flags)": 0.60,
    "POST /ofrep/v1/evaluate/flags (bulk)": 0.60,
    "POST /ofrep/v1/evaluate/flags/new-checkout (single)": 0.75,
    "GET /api/v1/ruleset with If-None-Match (304)": 0.90,
}


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
    options: Options,
    info: dict[str, object],
    workers: str,
) -> str:
    """The Markdown report."""
    ceiling = next(r for r in results if r.endpoint.ceiling)
    lines = [
        "### Requests",
        "",
        f"gunicorn (`gunicorn.conf.py`: {workers}); {info['flags']} flags in the environment "
        f"({info['hand_written_flags']} hand-written demo flags + generated ones); "
        f"wrk, {options.throughput_runs} x {options.throughput_seconds} s at 32 connections "
        "(2 threads, new connections each run; median) and "
        f"{options.latency_seconds} s at 1 connection, after a 1 s warm-up.",
        "",
        "| endpoint | bytes | req/s @32 (median) | runs min-max | vs ceiling | target "
        "| p50 @1 (ms) | p99 @1 (ms) | errors |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for result in results:
        ratio = result.rps / ceiling.rps if ceiling.rps else 0.0
        target = TARGETS.get(result.endpoint.label)
        mark = "✅" if target is not None and ratio >= target else "❌"
        verdict = "—" if target is None else f"≥ {target:.0%} {mark}"
        lines.append(
            f"| {result.endpoint.label} | {result.response_bytes:,} | {result.rps:,.0f} | "
            f"{min(result.rps_runs):,.0f}-{max(result.rps_runs):,.0f} | "
            f"{ratio:.0%} | {verdict} | {result.p50_ms:.2f} | {result.p99_ms:.2f} | "
            f"{result.errors} |"
        )
    bulk = next(r for r in results if r.endpoint.label.startswith("POST /api/v1/evaluate"))
    lines += [
        "",
        f"Bulk evaluation p99 at 1 connection: {bulk.p99_ms:.2f} ms (target ≤ 3 ms "
        f"{'✅' if bulk.p99_ms <= 3 else '❌'}).",
        "",
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
            "FlagShip (`flagship.asgi`)"
            if stream.server == "stock"
            else ("what-if: connection returned (`bench.server.asgi_pool_fix`)")
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
    lines += ["", f"Machine: {machine()}."]
    return "\n".join(lines) + "\n"


# --- main ---------------------------------------------------------------------------------------


def endpoints(server_key: str) -> list[Endpoint]:
    """The measured requests (version-independent: the 304 uses the current ETag, set later)."""
    json_headers = {"X-API-Key": server_key, "Content-Type": "application/json"}
    body = json.dumps({"context": CONTEXT})
    return [
        Endpoint("ceiling (constant Django view)", "GET", "/ceiling", {}, ceiling=True),
        Endpoint(
            "POST /api/v1/evaluate (bulk, 200 flags)",
            "POST",
            "/api/v1/evaluate",
            json_headers,
            body,
        ),
        Endpoint(
            "POST /ofrep/v1/evaluate/flags (bulk)",
            "POST",
            "/ofrep/v1/evaluate/flags",
            json_headers,
            body,
        ),
        Endpoint(
            "POST /ofrep/v1/evaluate/flags/new-checkout (single)",
            "POST",
            f"/ofrep/v1/evaluate/flags/{SINGLE_FLAG}",
            json_headers,
            body,
        ),
        Endpoint("GET /api/v1/ruleset (full)", "GET", "/api/v1/ruleset", {"X-API-Key": server_key}),
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
    """Start FlagShip and the ceiling (gunicorn) and both stream servers (uvicorn); their ports."""
    app_port, ceiling_port, stream_port, fixed_port = (free_port() for _ in range(4))
    gunicorn = [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
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
    processes.start(
        "stream-what-if",
        [
            PYTHON,
            "-m",
            "uvicorn",
            "bench.server.asgi_pool_fix:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(fixed_port),
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
        ("stream-what-if", fixed_port),
    ):
        wait_http(port, "/healthz", processes, name)
    return app_port, ceiling_port, stream_port, fixed_port


def run(args: argparse.Namespace) -> str:
    """The whole benchmark; returns the report."""
    options = QUICK if args.quick else DEFAULT
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
    db_url = database_url(args.postgres)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flagship.settings",
        "DJANGO_ENV": "production",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": SECRET,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ENV_FILE": str(workdir / "no.env"),
        "DATABASE_URL": db_url,
        "REDIS_URL": args.redis,
        # Counted as in production (a Redis increment per request) but never reached.
        "FLAGSHIP_EVALUATION_RATE": "1000000000/s",
        "PYTHONUNBUFFERED": "1",
    }
    try:
        print("Creating the database and seeding flags ...", file=sys.stderr)
        recreate_database(args.postgres)
        redis_client.flushdb()
        manage(env, "manage.py", "migrate", "--noinput")
        info = json.loads(manage(env, "-m", "bench.server.fixture", str(FLAG_COUNT)))
        app_port, ceiling_port, stream_port, fixed_port = start_servers(processes, env)
        workers = (
            ", ".join(
                f"{name} {env.get(f'GUNICORN_{name.upper()}', default)}"
                for name, default in (("workers", _default_workers()), ("threads", "4"))
            )
            + ", gthread"
        )

        server_key = str(info["server_key"])
        requests = endpoints(server_key)
        requests.append(
            Endpoint(
                "GET /api/v1/ruleset with If-None-Match (304)",
                "GET",
                "/api/v1/ruleset",
                {"X-API-Key": server_key, "If-None-Match": etag_of(app_port, server_key)},
                status=304,
            )
        )
        results = []
        for endpoint in requests:
            print(f"Measuring {endpoint.label} ...", file=sys.stderr)
            port = ceiling_port if endpoint.ceiling else app_port
            results.append(measure(wrk_path, port, endpoint, options, workdir))

        streams = []
        for server, port in (("stock", stream_port), ("what-if", fixed_port)):
            for count in options.subscribers:
                print(
                    f"Propagation, {server} stream server, {count} subscribers ...", file=sys.stderr
                )
                streams.append(
                    asyncio.run(
                        propagation(
                            port,
                            server_key,
                            count,
                            options=options,
                            env=env,
                            flag=str(info["toggle_flag"]),
                            server=server,
                        )
                    )
                )
        return report(results, streams, options, info, workers)
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


def _default_workers() -> str:
    return str(min(2 * (os.cpu_count() or 1) + 1, 12))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run, print (and write) the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short smoke run, not a measurement")
    parser.add_argument("--markdown", metavar="PATH", help="also write the report to PATH")
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
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    args = parser.parse_args(argv)
    text = run(args)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
