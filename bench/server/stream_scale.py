"""The change stream at scale: one stream server process, thousands of subscribers (issue 16).

Run from the repository root::

    .venv/bin/python -m bench.server.stream_scale [--subscribers 10000] [--changes 20]
                                                  [--clients 4] [--interval 0.5]
                                                  [--markdown PATH] [--quick]

One run, on loopback only:

1. creates its own PostgreSQL database (``bench.database.scratch_database``, on ``DATABASE_URL``'s
   server), migrates it, and seeds one project with one boolean flag and a server key of its
   ``production`` environment;
2. starts ONE stream server as production does (``uvicorn flagship.asgi:application``, production
   settings as ``bench.server.run`` sets them, one process) with its own pub/sub channel and cache
   key prefix, so that runs side by side do not hear each other;
3. opens ``--subscribers`` Server-Sent Events streams from ``--clients`` client processes (each
   holds many asyncio raw-socket connections: ``bench.server.run.Subscriber``), and times how long
   they take to be connected (a stream counts once its first event arrived);
4. makes ``--changes`` changes, ``--interval`` seconds apart, through the service layer
   (``bench.server.changer``: ``flags.services.flag_toggle``, commit time from an ``on_commit``
   hook), and measures for every subscriber and change the delay from the commit to the
   subscriber's receipt of the new version (``time.time()``, one machine); an event a subscriber
   never receives is a failure;
5. reads the server's resident memory (``VmRSS``) before and after the subscribers connect (per
   subscriber: the difference divided by their number) and its CPU time (``utime + stime``) over
   the change phase, divided by the events delivered;
6. stops that server and measures the machine's ceiling the same way (unless ``--no-bare``): a
   *bare* stream server (:class:`BareStream`: a minimal asyncio protocol on uvloop, as uvicorn
   runs, nothing of FlagShip) with the same client processes, ``--changes`` pokes instead of
   commits, each writing one pre-encoded event to every stream in one loop; the delay is from the
   poke to the receipt. What FlagShip's row adds above the bare row is FlagShip's; the rest is
   the machine (the clients share its cores);
7. prints a Markdown report (and writes it with ``--markdown``), then stops every process it
   started and drops the database, also on error.

Heartbeats are pushed out of the change phase (``FLAGSHIP_STREAM_HEARTBEAT=600``) so the CPU per
event counts events only; the stream rate limit per key stays at its production default (60 000
new streams a minute), above what one run opens. Every process raises its own open-file limit
(``flagship.fdlimit``): the server in ``flagship.asgi``, the clients here.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.database import NoServerError, scratch_database
from bench.server.run import PYTHON, ROOT, Subscriber, environment, manage, percentile
from flagship.fdlimit import OpenFilesLimit, raise_open_files_limit
from flagship.processes import Processes, free_port, wait_http

TARGET_P99_MS = 100.0
PROJECT = "stream-scale"
FLAG = "toggled"
REPORT_LIMIT = 1 << 28  # bytes: a client's report is one JSON line of every delay it measured
BATCH = 100  # connections each client process opens at a time (each waits for its first event)


@dataclass(frozen=True)
class Options:
    """The sizes of one run."""

    subscribers: int
    changes: int
    clients: int
    interval: float


@dataclass
class Result:
    """What one run measured."""

    options: Options
    connect_seconds: float = 0.0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    cpu_user: float = 0.0
    cpu_system: float = 0.0
    commits: int = 0
    delays_ms: list[float] = field(default_factory=list)
    missed: int = 0
    failure: str = ""
    open_files: OpenFilesLimit | None = None  # this process's, as the run started
    bare: Result | None = None  # the bare stream server's run, with the same clients

    @property
    def delivered(self) -> int:
        """Events received, over all subscribers and changes."""
        return len(self.delays_ms)

    @property
    def cpu_seconds(self) -> float:
        """The server's CPU time (user and system) over the change phase."""
        return self.cpu_user + self.cpu_system

    @property
    def expected(self) -> int:
        """One event per subscriber and change."""
        return self.options.subscribers * self.commits


# --- the seed (run in its own process, on the run's database) ------------------------------------


def seed() -> dict[str, object]:
    """Create the project, its flag and a server key of ``production``; what the run needs."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagship.settings")
    import django  # noqa: PLC0415

    django.setup()
    from accounts.models import ApiKey  # noqa: PLC0415
    from accounts.services import api_key_issue  # noqa: PLC0415
    from flags import services  # noqa: PLC0415

    project = services.project_create(key=PROJECT, name="Stream at scale")
    services.flag_create(project=project, key=FLAG, name="Toggled by the benchmark")
    environment = project.environments.get(key="production")
    _, server_key = api_key_issue(kind=ApiKey.Kind.SERVER, name="bench", environment=environment)
    return {"server_key": server_key, "environment_id": environment.pk}


# --- a client process: many subscribers on one event loop ----------------------------------------


async def client(port: int, key: str, count: int) -> None:
    """Open ``count`` streams; report; wait for the commits on stdin; report the delays."""
    request = (
        f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {key}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    subscribers: list[Subscriber] = []
    started = time.monotonic()
    try:
        for offset in range(0, count, BATCH):
            opened = []
            for _ in range(min(BATCH, count - offset)):
                _, protocol = await loop.create_connection(
                    lambda: Subscriber(request), "127.0.0.1", port
                )
                opened.append(protocol)
            subscribers.extend(opened)
            await asyncio.wait_for(asyncio.gather(*(s.first for s in opened)), 60)
    except (OSError, TimeoutError, ConnectionError) as error:
        ok = sum(1 for s in subscribers if s.first.done() and not s.first.exception())
        print(json.dumps({"failure": f"{ok} of {count} opened ({type(error).__name__}: {error})"}))
        return
    print(json.dumps({"connected": count, "seconds": time.monotonic() - started}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    commits: list[list[float]] = json.loads(await reader.readline())
    delays: list[float] = []
    missed = 0
    for version, committed in commits:
        for subscriber in subscribers:
            at = subscriber.seen_at(int(version))
            if at is None:
                missed += 1
            else:
                delays.append(round((at - committed) * 1000, 3))
    for subscriber in subscribers:
        subscriber.close()
    print(json.dumps({"delays": delays, "missed": missed}), flush=True)


# --- the bare stream server: what this machine allows, without FlagShip --------------------------

_BARE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
_BARE_OK = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def bare_event(version: int) -> bytes:
    """One event as FlagShip sends it (``format=flagship``), framed as one HTTP/1.1 chunk."""
    data = json.dumps({"version": version, "etag": f'"{version}"'})
    body = f"id: {version}\nevent: ruleset\ndata: {data}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(body), body)


class BareStream(asyncio.Protocol):
    """One connection to the bare server: a stream, a poke or a health check.

    ``POST /poke/<version>`` writes that version's event, encoded once, to every open stream in
    one loop over their transports, then answers 204; ``GET /healthz`` answers 204; any other
    request opens a stream (status line, headers and the current version's event).
    """

    def __init__(self, streams: set[Any], current: list[int]) -> None:
        self.streams = streams
        self.current = current
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.buffer = b""

    def connection_made(self, transport: Any) -> None:
        """Keep the transport."""
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Answer once the request's head is in."""
        if self.transport is None or self.transport in self.streams:
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        target = self.buffer.split(b" ", 2)[1]
        if target.startswith(b"/poke/"):
            version = int(target.rsplit(b"/", 1)[1])
            self.current[0] = version
            event = bare_event(version)
            for transport in self.streams:
                transport.write(event)
            self.transport.write(_BARE_OK)
            self.transport.close()
        elif target == b"/healthz":
            self.transport.write(_BARE_OK)
            self.transport.close()
        else:
            self.streams.add(self.transport)
            self.transport.write(_BARE_HEAD + bare_event(self.current[0]))

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget a closed stream."""
        if self.transport is not None:
            self.streams.discard(self.transport)


async def bare_server(port: int) -> None:
    """Serve bare streams on ``port`` until killed."""
    streams: set[Any] = set()
    current = [1]
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: BareStream(streams, current), "127.0.0.1", port, backlog=4096
    )
    async with server:
        await server.serve_forever()


def start_bare_server(processes: Processes, env: dict[str, str]) -> tuple[int, int]:
    """Start the bare server (uvloop, as uvicorn picks it); its port and pid."""
    port = free_port()
    processes.start("bare", [PYTHON, "-m", "bench.server.stream_scale", "--bare", str(port)], env)
    wait_http(port, "/healthz", processes, "bare")
    return port, processes.children[-1][1].pid


async def _poke(port: int, version: int) -> float:
    """Ask the bare server to send ``version``; the time just before asking."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    at = time.time()
    writer.write(f"POST /poke/{version} HTTP/1.1\r\nHost: bare\r\n\r\n".encode())
    await writer.drain()
    await reader.read()
    writer.close()
    return at


async def measure_bare(options: Options, env: dict[str, str], processes: Processes) -> Result:
    """The same clients and changes against the bare server; a change is a poke."""
    result = Result(options)
    port, pid = start_bare_server(processes, env)
    result.rss_before_mb = processes.rss_mb("bare")
    clients: list[asyncio.subprocess.Process] = []
    try:
        started = time.monotonic()
        clients.extend(
            [await _start_client(port, "bare", share, env) for share in _shares(options) if share]
        )
        for process in clients:
            if process.stdout is None:
                raise RuntimeError("no pipe from a client process")
            report = await _read_json(process.stdout, 60 + options.subscribers / 20)
            if "failure" in report:
                result.failure = f"a client: {report['failure']}"
                return result
        result.connect_seconds = time.monotonic() - started
        await asyncio.sleep(1.0)
        result.rss_after_mb = processes.rss_mb("bare")
        before = cpu_seconds(pid)
        pokes: list[tuple[int, float]] = []
        for version in range(2, options.changes + 2):
            await asyncio.sleep(options.interval)
            pokes.append((version, await _poke(port, version)))
        await asyncio.sleep(1.0)  # stragglers, as for FlagShip
        after = cpu_seconds(pid)
        result.cpu_user, result.cpu_system = after[0] - before[0], after[1] - before[1]
        result.commits = len(pokes)
        await _collect(clients, pokes, result)
        return result
    finally:
        await _stop_clients(clients)


# --- the server process --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process so far (``/proc/<pid>/stat``), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    ticks = os.sysconf("SC_CLK_TCK")
    return utime / ticks, stime / ticks


def start_stream_server(processes: Processes, env: dict[str, str]) -> tuple[int, int]:
    """Start one uvicorn process on ``flagship.asgi`` as production does; its port and pid."""
    port = free_port()
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
            str(port),
            "--timeout-graceful-shutdown",
            "5",
            "--proxy-headers",
            "--log-level",
            "warning",
            "--no-access-log",
            "--backlog",
            "4096",
        ],
        env,
    )
    wait_http(port, "/healthz", processes, "stream")
    return port, processes.children[-1][1].pid


async def _read_json(stream: asyncio.StreamReader, timeout: float) -> dict[str, object]:
    line = await asyncio.wait_for(stream.readline(), timeout)
    if not line:
        raise RuntimeError("a client process ended without reporting")
    result: dict[str, object] = json.loads(line)
    return result


async def _start_client(
    port: int, key: str, count: int, env: dict[str, str]
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "bench.server.stream_scale",
        "--client",
        str(port),
        key,
        str(count),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=REPORT_LIMIT,
    )


async def _make_changes(
    options: Options, env: dict[str, str], pid: int
) -> tuple[list[tuple[int, float]], tuple[float, float]]:
    """Run ``bench.server.changer``: the commits, and the server's CPU (user, system) meanwhile."""
    changer = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "bench.server.changer",
        FLAG,
        str(options.changes),
        str(options.interval),
        PROJECT,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    if changer.stdout is None:
        raise RuntimeError("no pipe from bench.server.changer")
    commits: list[tuple[int, float]] = []
    before = (0.0, 0.0)
    async for raw in changer.stdout:
        parts = raw.decode().split()
        if parts == ["ready"]:
            before = cpu_seconds(pid)
        elif len(parts) == 2:
            commits.append((int(parts[0]), float(parts[1])))
    if await changer.wait() != 0:
        raise RuntimeError("bench.server.changer failed")
    await asyncio.sleep(1.0)  # stragglers
    after = cpu_seconds(pid)
    return commits, (after[0] - before[0], after[1] - before[1])


async def _collect(
    clients: list[asyncio.subprocess.Process], commits: list[tuple[int, float]], result: Result
) -> None:
    """Send the commits to every client; add the delays and misses they report to ``result``."""
    payload = (json.dumps(commits) + "\n").encode()
    for process in clients:
        if process.stdin is None:
            raise RuntimeError("no pipe to a client process")
        process.stdin.write(payload)
        await process.stdin.drain()
    for process in clients:
        if process.stdout is None:
            raise RuntimeError("no pipe from a client process")
        report = await _read_json(process.stdout, 120)
        delays = report["delays"]
        missed = report["missed"]
        if not isinstance(delays, list) or not isinstance(missed, int):
            raise RuntimeError(f"a client reported {str(report)[:200]}")
        result.delays_ms.extend(float(d) for d in delays)
        result.missed += missed


async def measure(options: Options, env: dict[str, str], processes: Processes, key: str) -> Result:
    """Start the server, connect the subscribers, make the changes; what was measured."""
    result = Result(options)
    port, pid = start_stream_server(processes, env)
    result.rss_before_mb = processes.rss_mb("stream")
    clients: list[asyncio.subprocess.Process] = []
    try:
        started = time.monotonic()
        clients.extend(
            [await _start_client(port, key, share, env) for share in _shares(options) if share]
        )
        connect_timeout = 60 + options.subscribers / 20
        for process in clients:
            if process.stdout is None:
                raise RuntimeError("no pipe from a client process")
            report = await _read_json(process.stdout, connect_timeout)
            if "failure" in report:
                result.failure = f"a client: {report['failure']}"
                return result
        result.connect_seconds = time.monotonic() - started
        await asyncio.sleep(1.0)  # the server settles (and frees what connecting allocated)
        result.rss_after_mb = processes.rss_mb("stream")
        commits, (result.cpu_user, result.cpu_system) = await _make_changes(options, env, pid)
        result.commits = len(commits)
        await _collect(clients, commits, result)
        return result
    finally:
        await _stop_clients(clients)


def _shares(options: Options) -> list[int]:
    """How many subscribers each client process opens."""
    return [
        options.subscribers // options.clients
        + (1 if i < options.subscribers % options.clients else 0)
        for i in range(options.clients)
    ]


async def _stop_clients(clients: list[asyncio.subprocess.Process]) -> None:
    for process in clients:
        if process.returncode is None:
            process.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10)


# --- the report ----------------------------------------------------------------------------------


def _row(label: str, result: Result) -> str:
    """One line of the report's table."""
    options = result.options
    delays = result.delays_ms
    if result.failure:
        return f"| {label} | {options.subscribers} | failed: {result.failure} |||||||||||"
    if not delays:
        return f"| {label} | {options.subscribers} | no event delivered |||||||||| **not met** |"
    connect_rate = options.subscribers / result.connect_seconds if result.connect_seconds else 0.0
    per_subscriber_kb = (result.rss_after_mb - result.rss_before_mb) * 1024 / options.subscribers
    cpu_us = result.cpu_seconds * 1e6 / result.delivered if result.delivered else 0.0
    p99 = percentile(delays, 0.99)
    met = "met" if p99 <= TARGET_P99_MS and result.missed == 0 else "**not met**"
    return (
        f"| {label} | {options.subscribers} | {result.connect_seconds:.1f} | {connect_rate:.0f} "
        f"| {result.delivered} / {result.expected} | {percentile(delays, 0.50):.1f} "
        f"| {percentile(delays, 0.95):.1f} | {p99:.1f} | {max(delays):.1f} "
        f"| {result.rss_before_mb:.0f} → {result.rss_after_mb:.0f} "
        f"| {per_subscriber_kb:.1f} | {cpu_us:.1f} | {met} |"
    )


def report(result: Result, command: str) -> str:
    """The Markdown report of one run."""
    options = result.options
    lines = [
        "## The change stream at scale (issue 16)",
        "",
        f"Command: `{command}`",
        "",
        f"One uvicorn process (`flagship.asgi`), {options.subscribers} subscribers from "
        f"{options.clients} client processes (asyncio raw sockets), {options.changes} changes "
        f"{options.interval} s apart through `flags.services.flag_toggle`; delay from the commit "
        "to each subscriber's receipt of the event. Target: p99 <= "
        f"{TARGET_P99_MS:.0f} ms, no event missing.",
        "",
    ]
    if result.failure:
        return "\n".join([*lines, f"**Failed:** {result.failure}", ""])
    lines += [
        "| Server | Subscribers | Connect (s) | Connects/s | Delivered / expected | p50 (ms) "
        "| p95 (ms) | p99 (ms) | max (ms) | RSS before → after (MB) | Memory / subscriber (KB) "
        "| CPU / delivered event (µs) | Target |",
        "|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|",
        _row("FlagShip", result),
    ]
    if result.bare is not None:
        lines.append(_row("bare", result.bare))
    limit = result.open_files
    lines += [
        "",
        f"CPU: the server's utime + stime over the change phase ({result.cpu_user:.2f} s user, "
        f"{result.cpu_system:.2f} s system: the loopback socket writes), heartbeats out of it.",
    ]
    if result.bare is not None:
        bare = result.bare
        lines.append(
            "Bare: the ceiling of this machine with these clients: a minimal asyncio server "
            "(uvloop, as uvicorn runs; `BareStream`) that writes one pre-encoded event to every "
            "stream in one loop when poked over loopback; delay from the poke to receipt; CPU "
            f"{bare.cpu_user:.2f} s user, {bare.cpu_system:.2f} s system. Nothing of FlagShip, "
            "no database, no Redis: what is left above it is FlagShip's."
        )
    if limit is not None:
        lines.append(
            f"Open files: soft limit {limit.before}, raised to {limit.soft} (the hard limit, "
            f"{limit.hard}) by each process itself."
        )
    lines.append("")
    return "\n".join(lines)


def run(
    options: Options, postgres: str, redis_url: str, keep_logs: bool, bare: bool = True
) -> Result:
    """Create the database, seed it, measure, and clean everything up."""
    limit = raise_open_files_limit()  # the clients inherit it too
    os.environ.setdefault("DATABASE_URL", postgres)
    workdir = Path(tempfile.mkdtemp(prefix="flagship-bench-stream-"))
    processes = Processes(workdir)
    run_id = f"bench-stream-{os.getpid()}"
    try:
        with scratch_database("flagship_bench_stream") as (name, url):
            print(f"Database {name}: created", file=sys.stderr)
            env = {
                **environment(argparse.Namespace(postgres=postgres, redis=redis_url), workdir),
                "DATABASE_URL": url,
                "FLAGSHIP_CHANNEL_PREFIX": run_id,
                "CACHE_KEY_PREFIX": run_id,
                "FLAGSHIP_STREAM_HEARTBEAT": "600",
            }
            manage(env, "manage.py", "migrate", "--noinput")
            seeded = json.loads(manage(env, "-m", "bench.server.stream_scale", "--seed"))
            print(f"Measuring {options.subscribers} subscribers ...", file=sys.stderr)
            result = asyncio.run(measure(options, env, processes, str(seeded["server_key"])))
            result.open_files = limit
            if bare and not result.failure:
                processes.stop_one("stream")
                print(f"Measuring {options.subscribers} subscribers, bare ...", file=sys.stderr)
                try:
                    result.bare = asyncio.run(measure_bare(options, env, processes))
                except (RuntimeError, OSError, TimeoutError) as error:
                    result.bare = Result(options, failure=f"{type(error).__name__}: {error}")
            return result
    finally:
        processes.stop()
        if keep_logs:
            print(f"Logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run, print (and write) the report."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--seed"]:
        sys.stdout.write(json.dumps(seed()) + "\n")
        return 0
    if args_list[:1] == ["--bare"]:
        raise_open_files_limit()
        import uvloop  # noqa: PLC0415  # only the bare server needs it

        uvloop.run(bare_server(int(args_list[1])))
        return 0
    if args_list[:1] == ["--client"]:
        raise_open_files_limit()
        port, key, count = args_list[1:4]
        asyncio.run(client(int(port), key, int(count)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, help="streams to open (default 10000)")
    parser.add_argument("--changes", type=int, help="changes to make (default 20)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument(
        "--interval", type=float, default=0.5, help="seconds between changes (default 0.5)"
    )
    parser.add_argument("--quick", action="store_true", help="500 subscribers, 5 changes")
    parser.add_argument("--markdown", metavar="PATH", help="also write the report to PATH")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "DATABASE_URL",
            os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        ),
        help="a PostgreSQL server the run may create a database on (default: DATABASE_URL)",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="the Redis database of the run (nothing is flushed; default: %(default)s)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the server's log")
    parser.add_argument(
        "--no-bare", action="store_true", help="skip the bare server's run (the ceiling)"
    )
    args = parser.parse_args(args_list)
    options = Options(
        subscribers=args.subscribers or (500 if args.quick else 10_000),
        changes=args.changes or (5 if args.quick else 20),
        clients=max(1, args.clients),
        interval=args.interval,
    )
    if options.subscribers < 1 or options.changes < 1:
        parser.error("--subscribers and --changes must be at least 1")
    os.environ["DATABASE_URL"] = args.postgres
    try:
        result = run(options, args.postgres, args.redis, args.keep_logs, bare=not args.no_bare)
    except NoServerError as error:
        print(error)
        return 2
    command = shlex.join([".venv/bin/python", "-m", "bench.server.stream_scale", *args_list])
    text = report(result, command)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    bare = result.bare
    return 1 if result.failure or result.missed or (bare and (bare.failure or bare.missed)) else 0


if __name__ == "__main__":
    raise SystemExit(main())
