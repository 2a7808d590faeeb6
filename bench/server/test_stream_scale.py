"""Smoke test of the stream-at-scale benchmark: a tiny run from start to end, in its own process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bench.server.stream_scale import Options, Result, report

ROOT = Path(__file__).resolve().parents[2]


def test_report__every_delivery__the_percentiles_memory_and_cpu_per_event() -> None:
    # Given 4 subscribers that each received 2 changes, 10 MB more resident memory and 2 ms CPU
    result = Result(Options(subscribers=4, changes=2, clients=1, interval=0.5), commits=2)
    result.connect_seconds, result.rss_before_mb, result.rss_after_mb = 0.5, 100.0, 110.0
    result.cpu_user, result.cpu_system = 0.001, 0.001
    result.delays_ms = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 200.0]

    # When reported
    text = report(result, "python -m bench.server.stream_scale --subscribers 4")

    # Then one row: 8 of 8 delivered, p99 over the target, 2560 KB per subscriber, 250 µs/event
    assert "Command: `python -m bench.server.stream_scale --subscribers 4`" in text
    row = next(line for line in text.splitlines() if line.startswith("| FlagShip | 4 |"))
    assert "| 8 / 8 |" in row
    assert "| 2560.0 | 250.0 | **not met** |" in row


@pytest.mark.requires_postgres
@pytest.mark.requires_redis
def test_stream_scale__tiny_run__every_event_delivered_and_its_database_dropped() -> None:
    # Given PostgreSQL and Redis
    server = os.environ["DATABASE_URL"]

    # When 50 subscribers from 2 client processes hear 2 changes
    result = subprocess.run(  # noqa: S603  # this test's own argv
        [
            sys.executable,
            "-m",
            "bench.server.stream_scale",
            "--subscribers",
            "50",
            "--changes",
            "2",
            "--clients",
            "2",
            "--interval",
            "0.2",
            "--redis",
            os.environ["REDIS_URL"],
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "flagship.settings"},
        timeout=300,
    )

    # Then every subscriber got both events, from FlagShip and from the bare server, and the run
    # left no database behind
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if "| 50 |" in line]
    assert [row.split("|")[1].strip() for row in rows] == ["FlagShip", "bare"]
    assert all("| 100 / 100 |" in row for row in rows)
    name = re.search(r"Database (flagship_bench_stream_\d+): created", result.stderr)
    assert name is not None
    with psycopg.connect(server) as connection:
        left = connection.execute(
            "SELECT datname FROM pg_database WHERE datname = %s", [name.group(1)]
        ).fetchall()
    assert left == []
