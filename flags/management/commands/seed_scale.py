"""``manage.py seed_scale``: a project of 10 000 flags and a million history rows (issue 16).

What the admin must stay fast with: see ``bench.admin.seed``. The benchmark ``bench.admin.run``
runs it on a database of its own; on any other database it adds one project (``--project``, by
default ``scale``) and refuses, writing nothing, if that project exists.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from flags.management.progress import ProgressBar


class Command(BaseCommand):
    """Seed a project at scale, with progress bars on stderr, all or nothing."""

    help = (
        "Create project 'scale' with 3 environments, 10 000 flags (tags, lifecycles, live rules) "
        "and 1 000 000 history rows of people's changes over half a year, in bulk. Refuses if the "
        "project exists. For benchmarks: bench.admin.run uses it on a database of its own."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Counts, project key and random seed."""
        parser.add_argument("--flags", type=int, default=10_000, metavar="N", help="10 000")
        parser.add_argument(
            "--history",
            type=int,
            default=1_000_000,
            metavar="N",
            help="history rows in the project's scope, those of creating the flags included "
            "(1 000 000)",
        )
        parser.add_argument("--project", default="scale", help="project key (scale)")
        parser.add_argument("--seed", type=int, default=7, help="random seed (7)")

    def handle(self, *args: Any, **options: Any) -> None:
        """Seed in one transaction, then ANALYZE (PostgreSQL) so the planner knows the sizes."""
        # Imported here: the seeding lives with the benchmark that it serves.
        from bench.admin.seed import ProjectExistsError, seed_scale  # noqa: PLC0415

        if options["flags"] < 1 or options["history"] < 0:
            raise CommandError("--flags must be 1 or more and --history 0 or more.")
        bars: list[ProgressBar] = []
        logger = logging.getLogger("flags")
        level = logger.level
        if options["verbosity"] < 2:
            logger.setLevel(logging.WARNING)  # one INFO line per change otherwise
        started = time.monotonic()
        try:
            catalogue = seed_scale(
                project_key=options["project"],
                flags=options["flags"],
                history=options["history"],
                seed=options["seed"],
                progress=self._progress(bars),
            )
        except ProjectExistsError as error:
            raise CommandError(str(error)) from error
        finally:
            logger.setLevel(level)
            for bar in bars:
                bar.close()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        self.stdout.write(
            self.style.SUCCESS(
                f"Project {catalogue.project_key}: {catalogue.flags:,} flags, "
                f"{catalogue.states:,} states, {catalogue.live_rules:,} live rules, "
                f"{catalogue.tagged:,} tagged flags, {catalogue.history_rows:,} history rows "
                f"in {time.monotonic() - started:.0f} s."
            )
        )

    def _progress(self, bars: list[ProgressBar]) -> Callable[[str, int], Callable[[int], None]]:
        def start(label: str, total: int) -> Callable[[int], None]:
            if bars:
                bars.pop().close()
            bar = ProgressBar(total, label=label, stream=self.stderr)
            bars.append(bar)
            return bar.advance

        return start
