"""Smoke tests of the GraphQL benchmark: the report's arithmetic, and a whole small run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.graphql.run import main, report

ROWS = (
    "evaluate, 200 flags: REST POST /api/v1/evaluate",
    "evaluate, 200 flags: GraphQL evaluate",
    "one flag state: REST GET",
    "one flag state: GraphQL flagState",
    "floor: strawberry's view, nothing of FlagShip's (ceiling)",
    "floor: FlagShip's view, server key",
)


def test_report__medians_spread_and_ratios() -> None:
    # Given two rounds of every paired row, GraphQL twice REST's time
    results = {
        name: [
            {"median": 100.0 * (2 if index % 2 else 1), "p99": 150.0, "queries": 1},
            {"median": 120.0 * (2 if index % 2 else 1), "p99": 300.0, "queries": 1},
        ]
        for index, name in enumerate(ROWS)
    }

    # When the report is written
    text = report(results, requests=10, rounds=2)

    # Then each row has its median, spread and worst p99, and each pair its ratio
    assert "| evaluate, 200 flags: REST POST /api/v1/evaluate | 110 | 100 to 120 | 300 |" in text
    assert text.count("**2.00x** the time") == 3


@pytest.mark.requires_postgres
@pytest.mark.requires_redis
def test_main__small_run__every_row_measured(tmp_path: Path) -> None:
    # When the benchmark runs two requests a row, once, against this machine's services
    markdown = tmp_path / "graphql.md"
    status = main(
        [
            "--requests",
            "2",
            "--rounds",
            "1",
            "--postgres",
            os.environ["DATABASE_URL"],
            "--redis",
            os.environ["REDIS_URL"],
            "--markdown",
            str(markdown),
        ]
    )

    # Then every row answered (a row whose request fails stops the run) and was reported
    assert status == 0
    text = markdown.read_text(encoding="utf-8")
    for row in (*ROWS, "dashboard: 50 flags", "limits: measuring"):
        assert f"| {row}" in text
