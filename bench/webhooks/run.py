"""Benchmark webhook delivery: a burst of 1 000 changes to a project with 5 subscriptions.

Run from the repository root::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.webhooks.run
    ... -m bench.webhooks.run --quick            # 100 changes, 1 run: a smoke test
    ... -m bench.webhooks.run --markdown out.md  # also write the report to out.md

The run creates its own database (``flagship_bench_webhooks_<pid>``), migrates it, and starts a
receiver process on loopback (``bench.webhooks.receiver``: answers 200 at once and records each
arrival) and ``--workers`` ``manage.py run_worker`` processes with ``--concurrency`` senders each,
exactly as deployed. Each run commits ``--changes`` toggles as fast as one writer can
(``services.flag_toggle``, one transaction each, five deliveries each through the outbox) and
waits until every delivery is stored as delivered. It reports:

- **lag** of each delivery: from its event's creation inside the writer's transaction (a
  millisecond before the commit) to its arrival at the receiver, p50/p90/p99/max;
- **throughput**: deliveries per second from the first event to the last arrival;
- **lost** and **duplicate** deliveries (each (webhook, event id) must arrive exactly once).

The **ceiling**, measured in the same run: the same number of threads POSTing the same signed
bodies straight to the same receiver with ``http.client`` (a new connection each, as the worker
does), with nothing of FlagShip in between (no database, no claim, no record).
The database is dropped at the end, also on error. Redis is not used.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import http.client
import logging
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from bench.audit.run import machine
from bench.database import NoServerError, scratch_database
from flagship.processes import Processes, free_port

KEY = "Z6Wb1UGIualVanc8eEV0N4hFsNCQpBXZPkJS5bBtrNo="  # a Fernet key, bench only


@dataclass(frozen=True)
class RunResult:
    """One burst: its size, timings and delivery accounting."""

    changes: int
    deliveries: int
    delivered: int
    duplicates: int
    burst_seconds: float
    total_seconds: float
    lags_ms: list[float]
    drain_expected: int = 0
    drain_delivered: int = 0
    drain_duplicates: int = 0
    drain_seconds: float = 0.0

    @property
    def drain_throughput(self) -> float:
        """Deliveries per second while a backlog drains, first to last arrival."""
        return self.drain_delivered / self.drain_seconds if self.drain_seconds else 0.0

    @property
    def complete(self) -> bool:
        """Every delivery arrived, and none twice, in both phases."""
        return (
            self.delivered == self.deliveries
            and self.drain_delivered == self.drain_expected
            and self.duplicates == self.drain_duplicates == 0
        )

    @property
    def throughput(self) -> float:
        """Deliveries per second, first event to last arrival."""
        return self.delivered / self.total_seconds if self.total_seconds else 0.0


@dataclass(frozen=True)
class Ceiling:
    """Bare POSTs to the receiver."""

    requests: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, help="changes per burst (1 000)")
    parser.add_argument("--webhooks", type=int, default=5, help="subscriptions (5)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--concurrency", type=int, default=4, help="senders per worker (4)")
    parser.add_argument("--runs", type=int, help="bursts timed (3)")
    parser.add_argument("--quick", action="store_true", help="100 changes, 1 run")
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    options = parser.parse_args(argv)
    if options.changes is None:
        options.changes = 100 if options.quick else 1_000
    if options.runs is None:
        options.runs = 1 if options.quick else 3
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Create the database, measure, report, drop the database; the exit status."""
    options = _options(argv)
    try:
        with scratch_database("flagship_bench_webhooks") as (name, url):
            report, ok = _run(url, options)
            report += f"\n\nDatabase {name}: created for this run, dropped."
    except NoServerError as error:
        print(error)
        return 2
    print(report)
    if options.markdown:
        options.markdown.write_text(report + "\n")
    return 0 if ok else 1


def _environment(url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "REDIS_URL": "",
        "DJANGO_ENV": "development",
        "DJANGO_DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "flagship.settings",
        "DJANGO_ENV_FILE": "/nonexistent/flagship.env",
        "DJANGO_LOG_LEVEL": "WARNING",
        "FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS": KEY,
        "FLAGSHIP_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "PYTHONUNBUFFERED": "1",
    }


def _run(url: str, options: argparse.Namespace) -> tuple[str, bool]:
    variables = _environment(url)
    os.environ.update(variables)
    import django  # noqa: PLC0415  # configured from the variables set just above

    django.setup()
    logging.getLogger("flags").setLevel(logging.WARNING)
    from django.core.management import call_command  # noqa: PLC0415

    from flags import services  # noqa: PLC0415

    call_command("migrate", verbosity=0)
    project = services.project_create(key="bench", name="Bench")
    flag = services.flag_create(project=project, key="checkout", name="Checkout")
    state = flag.states.get(environment__key="staging")

    with tempfile.TemporaryDirectory(prefix="flagship-bench-webhooks-") as scratch:
        logs = Path(scratch)
        processes = Processes(logs)
        arrivals = logs / "arrivals.log"
        port = free_port()
        try:
            processes.start(
                "receiver",
                [
                    sys.executable,
                    "-m",
                    "bench.webhooks.receiver",
                    *("--port", str(port)),
                    "--out",
                    str(arrivals),
                ],
                {"PATH": os.environ.get("PATH", "")},
            )
            _wait_listening(port)
            for n in range(options.webhooks):
                services.webhook_create(
                    project=project, name=f"hook-{n}", url=f"http://127.0.0.1:{port}/hook-{n}"
                )
            senders = options.workers * options.concurrency
            ceiling = _ceiling(port, options.changes * options.webhooks, senders)

            def start_workers() -> None:
                for n in range(options.workers):
                    processes.start(
                        f"worker-{n}",
                        [
                            sys.executable,
                            "manage.py",
                            "run_worker",
                            "--concurrency",
                            str(options.concurrency),
                        ],
                        {**variables, "PATH": os.environ.get("PATH", "")},
                    )
                _wait_workers(processes, options.workers)

            def stop_workers() -> None:
                for n in range(options.workers):
                    processes.stop_one(f"worker-{n}")

            start_workers()
            state, _warm = _live(state, 20, arrivals, options.webhooks)  # not reported
            results: list[RunResult] = []
            for _ in range(options.runs):
                state, live = _live(state, options.changes, arrivals, options.webhooks)
                # The same burst committed while no worker runs, then drained: the rate at
                # which the workers empty a backlog, whatever the writer's speed.
                stop_workers()
                state, created, _seconds = _commit(state, options.changes)
                start_workers()
                delivered, duplicates, times = _collect(created, arrivals, options.webhooks)
                arrived = [at for _, at in times]
                span = max(arrived) - min(arrived) if arrived else 0.0
                results.append(
                    replace(
                        live,
                        drain_expected=len(created) * options.webhooks,
                        drain_delivered=delivered,
                        drain_duplicates=duplicates,
                        drain_seconds=span,
                    )
                )
        finally:
            processes.stop()
    ok = all(result.complete for result in results)
    return _report(options, results, ceiling), ok


def _wait_listening(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            connection.connect()
        except OSError:
            time.sleep(0.05)
        else:
            return
        finally:
            connection.close()
    raise RuntimeError("the receiver did not start")


def _wait_workers(processes: Processes, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = sum(
            "FlagShip worker:" in processes.tail(f"worker-{n}", 200) for n in range(count)
        )
        if started == count:
            time.sleep(0.5)  # the listener thread connects right after the banner
            return
        time.sleep(0.1)
    raise RuntimeError("workers did not start:\n" + processes.tail("worker-0"))


def _commit(state: Any, changes: int) -> tuple[Any, dict[str, float], float]:
    """Commit ``changes`` toggles; the state, each event's creation time by id, and seconds."""
    from flags import services  # noqa: PLC0415
    from flags.models import ChangeEvent  # noqa: PLC0415

    latest = ChangeEvent.objects.order_by("-occurred_at").values_list("occurred_at", flat=True)
    since = latest.first()
    started = time.time()
    for _ in range(changes):
        state = services.flag_toggle(state=state, enabled=not state.enabled, actor=None)
    seconds = time.time() - started
    events = ChangeEvent.objects.filter(kind="flag.toggled")
    if since is not None:
        events = events.filter(occurred_at__gt=since)
    created = {str(pk): at.timestamp() for pk, at in events.values_list("pk", "occurred_at")}
    return state, created, seconds


def _collect(
    created: dict[str, float], arrivals: Path, webhooks: int
) -> tuple[int, int, list[tuple[float, float]]]:
    """Wait until every delivery of ``created`` is stored as delivered (2 min at most).

    Returns the (webhook, event) pairs that arrived, the duplicates, and for each first arrival
    its event's creation time and its arrival time.
    """
    from flags.models import WebhookDelivery  # noqa: PLC0415

    expected = len(created) * webhooks
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        delivered = WebhookDelivery.objects.filter(
            event_id__in=list(created), status=WebhookDelivery.Status.DELIVERED
        ).count()
        if delivered >= expected:
            break
        time.sleep(0.1)
    time.sleep(0.3)  # a duplicate would arrive by now
    seen: Counter[tuple[str, str]] = Counter()
    times: list[tuple[float, float]] = []
    for line in arrivals.read_text().splitlines():
        event_id, path, arrived = line.split()
        if event_id in created:
            seen[(event_id, path)] += 1
            if seen[(event_id, path)] == 1:
                times.append((created[event_id], float(arrived)))
    return len(seen), sum(count - 1 for count in seen.values()), times


def _live(state: Any, changes: int, arrivals: Path, webhooks: int) -> tuple[Any, RunResult]:
    """A burst committed while the workers run: lag and throughput as the changes happen."""
    state, created, seconds = _commit(state, changes)
    delivered, duplicates, times = _collect(created, arrivals, webhooks)
    first = min(created.values(), default=0.0)
    last = max((arrived for _, arrived in times), default=first)
    return state, RunResult(
        changes=len(created),
        deliveries=len(created) * webhooks,
        delivered=delivered,
        duplicates=duplicates,
        burst_seconds=seconds,
        total_seconds=last - first,
        lags_ms=[(arrived - made) * 1000 for made, arrived in times],
    )


def _ceiling(port: int, requests: int, threads: int) -> Ceiling:
    """POST ``requests`` signed bodies to the receiver from ``threads`` threads, bare."""
    from flags.webhooks import secrets, signing  # noqa: PLC0415

    secret = secrets.new_secret()
    body = (
        b'{"id":"00000000-0000-0000-0000-000000000000","type":"flag.toggled",'
        b'"occurred_at":"2026-12-06T18:00:00.000000Z","project":{"id":1,"key":"bench"},'
        b'"environments":[{"id":2,"key":"staging"}],"flags":["checkout"],"actor":null,'
        b'"reason":"","data":{"before":{"enabled":false},"after":{"enabled":true}}}'
    )
    counter = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []

    def send() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            headers = signing.headers(secret, f"ceiling-{n}", int(time.time()), body)
            headers["Content-Type"] = "application/json"
            began = time.perf_counter()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("POST", "/ceiling", body=body, headers=headers)
            connection.getresponse().read()
            connection.close()
            elapsed = (time.perf_counter() - began) * 1000
            with lock:
                latencies.append(elapsed)

    started = time.perf_counter()
    workers = [threading.Thread(target=send) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return Ceiling(requests, time.perf_counter() - started, latencies)


def _report(options: argparse.Namespace, results: list[RunResult], ceiling: Ceiling) -> str:
    senders = options.workers * options.concurrency
    cores = os.cpu_count() or 1
    lines = [
        f"- {machine()}",
        f"- {options.changes} changes per burst, {options.webhooks} webhooks "
        f"({options.changes * options.webhooks} deliveries), {options.workers} worker processes "
        f"x {options.concurrency} senders; receiver, workers, writer and PostgreSQL share "
        f"{cores} cores; {options.runs} runs after a 20-change warm-up. Each run: a live burst "
        "(workers running), then the same burst committed with the workers stopped and "
        "drained when they start (the backlog).",
        "",
        "| run | delivered (live + backlog) | lost | duplicates | writer changes/s "
        "| live deliveries/s | lag p50 | lag p90 | lag p99 | lag max | backlog drained/s "
        "| per core |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, result in enumerate(results, start=1):
        lags = result.lags_ms
        expected = result.deliveries + result.drain_expected
        delivered = result.delivered + result.drain_delivered
        lines.append(
            f"| {n} | {delivered}/{expected} | {expected - delivered} "
            f"| {result.duplicates + result.drain_duplicates} "
            f"| {result.changes / result.burst_seconds:.0f} | {result.throughput:.0f} "
            f"| {percentile(lags, 0.5):.0f} ms | {percentile(lags, 0.9):.0f} ms "
            f"| {percentile(lags, 0.99):.0f} ms | {max(lags, default=float('nan')):.0f} ms "
            f"| {result.drain_throughput:.0f} | {result.drain_throughput / cores:.0f} |"
        )
    drains = [r.drain_throughput for r in results]
    p99s = [percentile(r.lags_ms, 0.99) for r in results]
    lines += [
        "",
        f"Backlog drained/s over the runs: median {statistics.median(drains):.0f}, "
        f"min {min(drains):.0f}, max {max(drains):.0f}. Lag p99: median "
        f"{statistics.median(p99s):.0f} ms, min {min(p99s):.0f}, max {max(p99s):.0f}.",
        "",
        f"Ceiling (same run): {senders} threads POSTing {ceiling.requests} signed bodies straight "
        f"to the receiver, a new connection each, nothing of FlagShip in between: "
        f"{ceiling.throughput:.0f} requests/s ({ceiling.throughput / cores:.0f} per core), "
        f"latency p50 {percentile(ceiling.latencies_ms, 0.5):.1f} ms, "
        f"p99 {percentile(ceiling.latencies_ms, 0.99):.1f} ms. The backlog drains at "
        f"{statistics.median(drains) / ceiling.throughput:.0%} of it.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
