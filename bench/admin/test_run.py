"""Smoke tests of the admin-at-scale benchmark: every page answers, the report has every row."""

from __future__ import annotations

import pytest

from bench.admin.measure import measure, misses, page_sizes, pages, table
from bench.admin.run import main
from bench.admin.seed import catalogue, seed_scale


@pytest.mark.django_db
def test_admin_benchmark__small_seed__every_page_answers_200() -> None:
    # Given a small project seeded as the benchmark seeds it
    seed_scale(flags=30, history=800)
    seeded = catalogue("scale")

    # When every page is timed once and counted at two page sizes
    timings = measure(seeded, runs=1)
    sizes = page_sizes(seeded)

    # Then each answered 200, and the report lists them all
    assert [(t.page.name, t.status) for t in timings if t.status != 200] == []
    assert len(timings) == len(pages(seeded))
    report = table(timings, sizes)
    assert "| Timeline (busiest flag) | 200 |" in report
    assert "| Audit log, by flag | 200 |" in report
    assert not [miss for miss in misses(timings, sizes) if "status" in miss]


def test_admin_benchmark__no_database_url__exit_status_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no DATABASE_URL / When run / Then it says what it needs, and creates nothing
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["--quick"]) == 2
    assert "DATABASE_URL is required" in capsys.readouterr().out
