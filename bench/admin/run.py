"""Benchmark the admin at scale: 10 000 flags in 3 environments, 1 000 000 history rows (issue 16).

Run from the repository root::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.admin.run
    ... -m bench.admin.run --quick             # 300 flags, 5 000 rows, 5 runs: a smoke test
    ... -m bench.admin.run --markdown out.md   # also write the report to out.md

``DATABASE_URL`` names a PostgreSQL server and a role allowed to create databases. The run
creates its own database (``flagship_bench_admin_<pid>``), migrates it, seeds it with
``manage.py seed_scale`` (``bench.admin.seed``), fills the stored stale inputs as
``manage.py run_worker``'s ``staleness.refresh`` job does after an upgrade (timed; the seed
bulk-creates its flags, which leaves them without a row), runs ``VACUUM ANALYZE``, times every page
in-process through Django's test client signed in as a staff release manager
(``bench.admin.measure``), counts each page's queries at 25 and at 100 rows a page, and drops the
database at the end, also on error. Redis is not used (the run unsets ``REDIS_URL``).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import logging
import os
import shlex
import time
from collections.abc import Sequence

from bench.audit.run import machine
from bench.database import NoServerError, scratch_database

DEFAULTS = {"flags": 10_000, "history": 1_000_000, "runs": 20}
QUICK = {"flags": 300, "history": 5_000, "runs": 5}


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--flags", type=int, help="flags of the project (10 000)")
    parser.add_argument("--history", type=int, help="history rows of the project (1 000 000)")
    parser.add_argument("--runs", type=int, help="timed requests per page after a warm-up (20)")
    parser.add_argument("--quick", action="store_true", help="300 flags, 5 000 rows, 5 runs")
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    options = parser.parse_args(argv)
    defaults = QUICK if options.quick else DEFAULTS
    for name, default in defaults.items():
        if getattr(options, name) is None:
            setattr(options, name, default)
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Create the database, seed, time, report, drop the database; the exit status.

    0: done (misses of the target are in the report, marked ⚠); 2: no PostgreSQL server.
    """
    options = _options(argv)
    command = "python -m bench.admin.run " + shlex.join(
        list(argv if argv is not None else sys.argv[1:])
    )
    try:
        with scratch_database("flagship_bench_admin") as (name, url):
            report = _run(url, options, command.strip())
            report += f"\n\nDatabase {name}: created for this run, dropped."
    except NoServerError as error:
        print(error)
        return 2
    print(report)
    if options.markdown:
        options.markdown.write_text(report + "\n")
    return 0


def _run(url: str, options: argparse.Namespace, command: str) -> str:
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)  # sessions and caches in process: Redis is not ours
    os.environ["DJANGO_ENV"] = "development"
    os.environ["DJANGO_DEBUG"] = "false"  # no query log: it would be timed too
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagship.settings")
    import django  # noqa: PLC0415  # configured from the variables set just above

    django.setup()
    logging.getLogger("flags").setLevel(logging.WARNING)
    logging.getLogger("flagship.access").setLevel(logging.WARNING)  # a line per request otherwise
    from django.core.management import call_command  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415

    from bench.admin.measure import NOTE, measure, misses, page_sizes, table  # noqa: PLC0415
    from bench.admin.seed import catalogue  # noqa: PLC0415
    from flags import staleness  # noqa: PLC0415

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    call_command("seed_scale", flags=options.flags, history=options.history, verbosity=0)
    seeded = time.perf_counter() - started
    started = time.perf_counter()
    filled = staleness.refresh()  # run_worker's job: the stale inputs of every seeded flag
    refreshed = time.perf_counter() - started
    with connection.cursor() as cursor:
        # What autovacuum would have done: statistics, and the visibility map for index-only scans.
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SHOW server_version")
        (postgres,) = cursor.fetchone() or ("?",)
    seeded_data = catalogue("scale")
    timings = measure(seeded_data, runs=options.runs)
    sizes = page_sizes(seeded_data)
    missed = misses(timings, sizes)
    lines = [
        f"`{command}`",
        "",
        f"- {machine()}; PostgreSQL {postgres}",
        f"- Project `scale`: {seeded_data.flags:,} flags, {seeded_data.states:,} states in 3 "
        f"environments, {seeded_data.live_rules:,} live rules, {seeded_data.tagged:,} tagged "
        f"flags, {seeded_data.history_rows:,} history rows; migrated and seeded in {seeded:.0f} s",
        f"- Stored stale inputs of {filled:,} flags computed by the worker's job "
        f"(`staleness.refresh`) in {refreshed:.1f} s ({filled / max(refreshed, 1e-9):,.0f} flags/s)"
        ", before the pages are timed, as a running `manage.py run_worker` keeps them",
        f"- {options.runs} timed requests per page after one warm-up, in-process (Django test "
        "client, signed in as a staff release manager); target p95 ≤ 200 ms",
        "",
        table(timings, sizes),
        "",
        NOTE,
        "",
        "Misses: " + ("; ".join(missed) if missed else "none"),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
