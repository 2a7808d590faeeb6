"""Smoke test of the webhook benchmark: a small burst is delivered completely, and reported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.requires_postgres
def test_webhook_benchmark__small_burst__every_delivery_reported_once() -> None:
    # Given the PostgreSQL server the tests use
    # When the benchmark runs a small burst as its own process (its own database and workers)
    result = subprocess.run(  # our own module
        [sys.executable, "-m", "bench.webhooks.run", "--quick", "--changes", "20"],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": os.environ["DATABASE_URL"],
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Then it exits 0 (nothing lost, nothing twice) and reports the run and the ceiling
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| 1 | 200/200 | 0 | 0 |" in result.stdout
    assert "Ceiling (same run)" in result.stdout
    assert "dropped." in result.stdout
