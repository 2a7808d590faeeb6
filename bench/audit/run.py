"""Benchmark the admin's audit log at 100 000 history rows against Django's own LogEntry list.

Run from the repository root::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.audit.run
    ... -m bench.audit.run --quick         # 5 000 rows, 3 runs: a smoke test, not a measurement
    ... -m bench.audit.run --markdown out.md   # also write the report to out.md

``DATABASE_URL`` names a PostgreSQL server and a role allowed to create databases. The run
creates its own database (``flagship_bench_audit_<pid>``), migrates it, seeds it
(``bench.audit.seed``), times the pages in-process through Django's test client as a signed-in
Viewer (``bench.audit.measure``), and drops the database at the end, also on error. No other
database is touched; Redis is not used (the run unsets ``REDIS_URL``).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import logging
import os
import platform
import time
from collections.abc import Sequence

from bench.database import NoServerError, scratch_database

DEFAULT_ROWS = 100_000
QUICK_ROWS = 5_000


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
        f"{platform.system()} {platform.release()}"
    )


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, help=f"history rows to seed ({DEFAULT_ROWS})")
    parser.add_argument("--flags", type=int, help="flags of the large project (300)")
    parser.add_argument("--runs", type=int, help="timed requests per page (9)")
    parser.add_argument("--quick", action="store_true", help="5 000 rows, 50 flags, 3 runs")
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    options = parser.parse_args(argv)
    defaults = (QUICK_ROWS, 50, 3) if options.quick else (DEFAULT_ROWS, 300, 9)
    for name, default in zip(("rows", "flags", "runs"), defaults, strict=True):
        if getattr(options, name) is None:
            setattr(options, name, default)
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Create the database, seed, time, report, drop the database; the exit status."""
    options = _options(argv)
    try:
        with scratch_database("flagship_bench_audit") as (name, url):
            report = _run(url, options) + f"\n\nDatabase {name}: created for this run, dropped."
    except NoServerError as error:
        print(error)
        return 2
    print(report)
    if options.markdown:
        options.markdown.write_text(report + "\n")
    return 0


def _run(url: str, options: argparse.Namespace) -> str:
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)  # sessions and caches in process: Redis is not ours
    os.environ["DJANGO_ENV"] = "development"
    os.environ["DJANGO_DEBUG"] = "false"  # no query log: it would be timed too
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagship.settings")
    import django  # noqa: PLC0415  # configured from the variables set just above

    django.setup()
    logging.getLogger("flags").setLevel(logging.WARNING)  # one line per seeded change otherwise
    from django.core.management import call_command  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415

    from bench.audit.measure import measure, table  # noqa: PLC0415  # needs Django set up
    from bench.audit.seed import seed  # noqa: PLC0415

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    catalogue = seed(rows=options.rows, flags=options.flags)
    with connection.cursor() as cursor:
        # What autovacuum would have done to half a year of history: statistics for the planner,
        # and the visibility map that lets it read indexes without visiting the table.
        cursor.execute("VACUUM ANALYZE")
    seeded = time.perf_counter() - started
    before = measure(catalogue, runs=options.runs)
    after = None  # the history indexes the feed reads are the migrations' (flags 0007)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (postgres,) = cursor.fetchone() or ("?",)
    lines = [
        f"- {machine()}; PostgreSQL {postgres}",
        f"- {catalogue.history_rows:,} history rows (11 models), {catalogue.log_rows:,} "
        f"LogEntry rows; seeded in {seeded:.0f} s; median of {options.runs} requests per page "
        "after one warm-up, in-process (Django test client, signed in as a Viewer)",
        "",
        table(before, after),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
