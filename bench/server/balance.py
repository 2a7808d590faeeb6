"""Where the server's work lands: CPU of a process tree and connections per worker, from ``/proc``.

``CpuMeter`` reads the CPU time (``utime + stime`` of every process of a server's tree: the master
and all its workers, plus the time of children already reaped, ``cutime + cstime``) before and
after a measured window: ``cores busy`` is the CPU seconds over the wall seconds (2.0: two cores
fully busy). ``connections_per_worker`` counts, for each worker, the established TCP connections
on the server's port among the worker's file descriptors.

``run_balance`` is the sweep of ``python -m bench.server.run --balance``: FlagShip under a few
worker models (the stock gthread worker, gthread with ``reuse_port``, ``flagship.workers
.ReusePortThreadWorker`` with and without the master's socket, the sync worker), bulk
evaluation and OFREP single at 4 and at 32 keep-alive connections, with each run's connections
per worker and cores busy (issue 16).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flagship.processes import Processes

    from .run import Endpoint, Options

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ESTABLISHED = "01"


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (every thread's)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                found.extend(int(p) for p in (task / "children").read_text().split())
            except OSError:
                continue
    except OSError:
        return []
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        pending.extend(children(current))
    return pids


def cpu_ticks(pid: int) -> int:
    """``utime + stime + cutime + cstime`` of one process, in clock ticks (0 once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "; state is fields[0]
    return sum(int(value) for value in fields[11:15])


def tree_ticks(pid: int) -> dict[int, int]:
    """Clock ticks of every process of the tree rooted at ``pid``."""
    return {member: cpu_ticks(member) for member in tree(pid)}


@dataclass
class CpuWindow:
    """The CPU a process tree used over a window."""

    wall_seconds: float
    cpu_seconds: float
    per_process: dict[int, float] = field(default_factory=dict)  # CPU seconds, workers only

    @property
    def cores_busy(self) -> float:
        """CPU seconds per wall second."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0


class CpuMeter:
    """``with CpuMeter(master) as meter: ...``; then ``meter.window``."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.before: dict[int, int] = {}
        self.started = 0.0
        self.window = CpuWindow(0.0, 0.0)

    def __enter__(self) -> CpuMeter:
        self.before = tree_ticks(self.master)
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        after = tree_ticks(self.master)
        wall = time.monotonic() - self.started
        # A process that died in the window: its whole time is in the master's cutime now.
        used = sum(after.values()) - sum(
            ticks for pid, ticks in self.before.items() if pid in after
        )
        per_process = {
            pid: (ticks - self.before.get(pid, 0)) / CLOCK_TICKS
            for pid, ticks in after.items()
            if pid != self.master
        }
        self.window = CpuWindow(wall, max(used, 0) / CLOCK_TICKS, per_process)


def _established_inodes(port: int) -> set[str]:
    """Socket inodes of established TCP connections whose local port is ``port``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            if local_port == port and parts[3] == ESTABLISHED:
                inodes.add(parts[9])
    return inodes


def connections_per_worker(master: int, port: int) -> dict[int, int]:
    """For each worker of ``master``, its established connections on ``port``."""
    inodes = _established_inodes(port)
    counts: dict[int, int] = {}
    for worker in children(master):
        count = 0
        try:
            for fd in Path(f"/proc/{worker}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    count += 1
        except OSError:
            continue
        counts[worker] = count
    return counts


def spread(counts: dict[int, int]) -> str:
    """``20/12/0``: connections per worker, most first."""
    return "/".join(str(count) for count in sorted(counts.values(), reverse=True)) or "—"


# --- the sweep -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One worker model of the balance sweep."""

    label: str
    overrides: dict[str, str]


def variants(cores: int) -> tuple[Variant, ...]:
    """The worker models compared (workers and threads as ``gunicorn.conf.py``'s defaults)."""
    workers = str(min(cores + 1, 12))
    gthread = {"GUNICORN_WORKERS": workers, "GUNICORN_THREADS": "2"}
    return (
        Variant(
            f"gthread {workers}x2 (stock)",
            {**gthread, "GUNICORN_WORKER_CLASS": "gthread", "GUNICORN_REUSE_PORT": "0"},
        ),
        Variant(
            f"gthread {workers}x2 + reuse_port",
            {**gthread, "GUNICORN_WORKER_CLASS": "gthread", "GUNICORN_REUSE_PORT": "1"},
        ),
        Variant(
            f"ReusePortThreadWorker {workers}x2 (default: + master socket)",
            {
                **gthread,
                "GUNICORN_WORKER_CLASS": "flagship.workers.ReusePortThreadWorker",
                "GUNICORN_REUSE_PORT": "1",
                "GUNICORN_MASTER_SOCKET": "1",
            },
        ),
        Variant(
            f"ReusePortThreadWorker {workers}x2, workers' sockets only",
            {
                **gthread,
                "GUNICORN_WORKER_CLASS": "flagship.workers.ReusePortThreadWorker",
                "GUNICORN_REUSE_PORT": "1",
                "GUNICORN_MASTER_SOCKET": "0",
            },
        ),
        Variant(
            f"sync {2 * cores + 1}",
            {
                "GUNICORN_WORKER_CLASS": "sync",
                "GUNICORN_WORKERS": str(2 * cores + 1),
                "GUNICORN_THREADS": "1",
                "GUNICORN_REUSE_PORT": "0",
            },
        ),
    )


@dataclass
class Run:
    """One wrk run of one variant, endpoint and connection count."""

    rps: float
    cores: float
    spread: str
    idle_workers: int
    errors: int
    p99_ms: float
    cpu_split: str = ""  # cores busy per worker, busiest first: "0.95/0.60/0.02"


@dataclass
class BalanceResult:
    """A variant's runs: ``runs[(endpoint name, connections)]``."""

    variant: Variant
    runs: dict[tuple[str, int], list[Run]] = field(default_factory=dict)
    failure: str = ""


def measured_run(  # noqa: PLR0917  # one wrk run and what it needs
    wrk_path: str,
    port: int,
    master: int,
    script: Path,
    path: str,
    connections: int,
    seconds: int,
) -> Run:
    """One wrk run with the server's CPU and, a second in, its connections per worker."""
    from .run import wrk_argv, wrk_output  # noqa: PLC0415  # run imports this module

    argv = wrk_argv(wrk_path, f"http://127.0.0.1:{port}{path}", script, connections, seconds)
    with CpuMeter(master) as meter:
        child = subprocess.Popen(  # noqa: S603  # wrk, found on PATH
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        counts: dict[int, int] = {}
        for _ in range(3):  # the fullest of three looks (a look may fall between requests)
            time.sleep(min(1.0, seconds / 2) / 3)
            now = connections_per_worker(master, port)
            if sum(now.values()) >= sum(counts.values()):
                counts = now
        output, _ = child.communicate(timeout=seconds + 30)
    rps, errors, percentiles = wrk_output(output)
    window = meter.window
    split = sorted(
        (seconds / window.wall_seconds for seconds in window.per_process.values()), reverse=True
    )
    return Run(
        rps,
        window.cores_busy,
        spread(counts),
        sum(1 for count in counts.values() if count == 0),
        errors,
        percentiles.get("99", 0.0),
        "/".join(f"{cores:.2f}" for cores in split),
    )


def run_balance(  # noqa: PLR0917  # the run's state, passed on
    processes: Processes,
    env: dict[str, str],
    requests: dict[str, Endpoint],
    options: Options,
    wrk_path: str,
    workdir: Path,
    rounds: int,
) -> list[BalanceResult]:
    """Each variant in turn (interleaved over ``rounds``): 4 and 32 connections, both endpoints."""
    from flagship.processes import wait_http  # noqa: PLC0415

    from .run import check_response, lua_script, start_gunicorn  # noqa: PLC0415

    results = [BalanceResult(variant) for variant in variants(os.cpu_count() or 1)]
    for round_number in range(rounds):
        for entry in results:
            if entry.failure:
                continue
            print(
                f"Balance {round_number + 1}/{rounds}: {entry.variant.label} ...", file=sys.stderr
            )
            name = "balance"
            port = start_gunicorn(processes, env, name, entry.variant.overrides)
            try:
                wait_http(port, "/healthz", processes, name)
                master = next(child.pid for n, child in processes.children if n == name)
                for endpoint_name in BALANCED:
                    endpoint = requests[endpoint_name]
                    check_response(port, endpoint)
                    script = lua_script(endpoint, workdir)
                    measured_run(wrk_path, port, master, script, endpoint.path, 32, 1)  # warm
                    for connections in CONNECTIONS:
                        for _ in range(options.sweep_runs):
                            entry.runs.setdefault((endpoint_name, connections), []).append(
                                measured_run(
                                    wrk_path,
                                    port,
                                    master,
                                    script,
                                    endpoint.path,
                                    connections,
                                    options.sweep_seconds,
                                )
                            )
            except (RuntimeError, subprocess.SubprocessError, StopIteration) as error:
                entry.failure = str(error).splitlines()[0][:120]
            finally:
                processes.stop_one(name)
    return results


BALANCED = ("bulk", "single")
CONNECTIONS = (4, 32)


def balance_report(results: list[BalanceResult], options: Options, rounds: int) -> list[str]:
    """The balance sweep as a Markdown table, and the winner by the 4-connection throughput."""
    from .run import machine  # noqa: PLC0415

    lines = [
        "### Connections across workers (issue 16)",
        "",
        "```sh",
        ".venv/bin/python -m bench.server.run --balance"
        + (" --quick" if options.sweep_seconds < 5 else ""),
        "```",
        "",
        f"FlagShip (200 flags) restarted under each worker model, {os.cpu_count()} cores; "
        f"{rounds} round(s) over the models, each wrk {options.sweep_runs} x "
        f"{options.sweep_seconds} s per endpoint and connection count (new keep-alive "
        "connections each run, 2 wrk threads) after a 1 s warm-up. req/s and cores busy: "
        "median over the runs; cores busy: CPU seconds of gunicorn's master and workers "
        "(`/proc/<pid>/stat`) per wall second; connections per worker: established connections "
        "in each worker's file descriptors about a second into each run (every run listed, most "
        "loaded worker first; the sync worker closes each connection after one request, so it "
        "holds almost none); idle: runs in which at least one worker held no connection; "
        "cores per worker: each worker's CPU seconds per wall second (every run, busiest "
        "first). wrk runs on the same 2 cores: a server alone at 2.0 cores busy is not possible.",
        "",
        "| worker model | endpoint | conns | req/s | min-max | cores busy | req/s per core "
        "| p99 (ms) | 4 vs 32 | connections per worker (each run) | runs with an idle worker "
        "| cores per worker (each run) | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|",
    ]
    scores: dict[str, float] = {}
    for entry in results:
        if entry.failure:
            lines.append(f"| {entry.variant.label} | failed: {entry.failure} |||||||||||| ")
            continue
        ratios = []
        for endpoint_name in BALANCED:
            rps32 = _median(entry.runs.get((endpoint_name, 32), []), "rps")
            for connections in CONNECTIONS:
                runs = entry.runs.get((endpoint_name, connections), [])
                if not runs:
                    continue
                rps = _median(runs, "rps")
                cores = _median(runs, "cores")
                ratio = rps / rps32 if rps32 else 0.0
                if connections == 4:
                    ratios.append(ratio)
                lines.append(
                    f"| {entry.variant.label} | {endpoint_name} | {connections} | {rps:,.0f} | "
                    f"{min(r.rps for r in runs):,.0f}-{max(r.rps for r in runs):,.0f} | "
                    f"{cores:.2f} | {rps / cores if cores else 0:,.0f} | "
                    f"{_median(runs, 'p99_ms'):.1f} | "
                    + (f"{ratio:.0%}" if connections == 4 else "—")
                    + f" | {' '.join(r.spread for r in runs)} | "
                    f"{sum(1 for r in runs if r.idle_workers)}/{len(runs)} | "
                    f"{' '.join(r.cpu_split for r in runs)} | {sum(r.errors for r in runs)} |"
                )
        both = [
            _median(entry.runs.get((name, connections), []), "rps")
            for name in BALANCED
            for connections in CONNECTIONS
        ]
        if all(both):
            scores[entry.variant.label] = statistics.geometric_mean(both)
    if scores:
        best = max(scores, key=scores.__getitem__)
        lines += [
            "",
            "Score (geometric mean of the four req/s medians, relative to the best): "
            + ", ".join(f"{label} {score / scores[best]:.0%}" for label, score in scores.items())
            + f". Best: {best}.",
        ]
    return [*lines, "", f"Machine: {machine()}."]


def _median(runs: list[Run], attribute: str) -> float:
    values = [float(getattr(run, attribute)) for run in runs]
    return statistics.median(values) if values else 0.0
