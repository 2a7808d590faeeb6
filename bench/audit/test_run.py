"""Smoke tests of the audit benchmark: it seeds, every page answers, the report has every row."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bench.audit.measure import table
from bench.audit.run import main
from bench.audit.seed import seed
from bench.database import database_url
from flags.history.feed import audit_rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_audit_benchmark__small_seed__every_page_answers_200() -> None:
    # Given a small catalogue (the benchmark's own seeding, in the test database)
    catalogue = seed(rows=800, flags=12)

    # When every page is timed once
    from bench.audit.measure import measure  # noqa: PLC0415  # registers LogEntry's admin

    timings = measure(catalogue, runs=1)

    # Then each answered 200 with a bounded number of queries, and the report lists them all
    assert audit_rows().count() >= 800
    assert [(t.page.name, t.status) for t in timings if t.status != 200] == []
    # (at most 40: the busiest, by flag, reads the flag's and FlagShip's own project's ids first,
    # flags.history.feed; constant in the page size, tested in flags/tests/test_admin_scale.py)
    assert max(t.queries for t in timings) <= 40
    report = table(timings)
    assert "| Audit log, by flag | 200 |" in report
    assert "| Baseline: LogEntry, last page | 200 |" in report


def test_audit_benchmark__no_database_url__exit_status_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no DATABASE_URL
    monkeypatch.delenv("DATABASE_URL", raising=False)

    # When run / Then it says what it needs, and creates nothing
    assert main(["--quick"]) == 2
    assert "DATABASE_URL is required" in capsys.readouterr().out


def test_database_url__other_database__same_server_and_role() -> None:
    assert (
        database_url("postgres://postgres:secret@db.example:5433/flagship?sslmode=require", "x")
        == "postgres://postgres:secret@db.example:5433/x?sslmode=require"
    )


@pytest.mark.requires_postgres
def test_audit_benchmark__run__creates_its_database_and_drops_it() -> None:
    # Given a PostgreSQL server
    server = os.environ["DATABASE_URL"]

    # When a tiny run goes from start to end in its own process
    result = subprocess.run(
        [sys.executable, "-m", "bench.audit.run", "--quick", "--rows", "600", "--runs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "flagship.settings"},
    )

    # Then it reported every page and left no database of its own behind
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| Baseline: LogEntry, one week | 200 |" in result.stdout
    name = re.search(r"Database (flagship_bench_audit_\d+): created", result.stdout)
    assert name is not None
    with psycopg.connect(server) as connection:
        left = connection.execute(
            "SELECT datname FROM pg_database WHERE datname = %s", [name.group(1)]
        ).fetchall()
    assert left == []
