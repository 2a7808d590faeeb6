"""``manage.py seed_demo``: the demo shop, its people and (optionally) thousands of flags."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from flags.management import demo
from flags.management.progress import ProgressBar


class Command(BaseCommand):
    """Create the demo project, users and flags; only what is missing, so it is safe to re-run."""

    help = (
        "Create the demo: project 'demo' (Demo shop) with realistic flags, and a user per role "
        "(viewer, editor, release-manager, administrator) plus the superuser admin. Passwords come "
        "from FLAGSHIP_DEMO_PASSWORD or FLAGSHIP_DEMO_<USER>_PASSWORD, else are generated and "
        "printed once. Idempotent: existing objects are left as they are."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """``--flags N`` adds generated flags generated-00001 … N (fast, in bulk)."""
        parser.add_argument(
            "--flags",
            type=int,
            default=0,
            metavar="N",
            help="Also create N generated flags (generated-00001 ...); existing ones are skipped.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Seed in one transaction; print passwords only after it committed."""
        count: int = options["flags"]
        if count < 0:
            raise CommandError("--flags must be 0 or more.")
        report = demo.Report()
        bars: list[ProgressBar] = []
        with _quiet_services(options["verbosity"]), transaction.atomic():
            people = demo.seed_users(report)
            project = demo.seed_project(report, owner=people.get("editor"))
            if count:
                demo.seed_generated(project, count, report, self._progress(bars))
        for bar in bars:
            bar.close()
        for line in report.lines:
            self.stdout.write(line)
        if report.passwords:
            self.stdout.write(
                self.style.WARNING("Generated passwords (shown this once; store them now):")
            )
            for line in report.passwords:
                self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(f"Demo ready: project {demo.PROJECT_KEY}."))

    def _progress(self, bars: list[ProgressBar]) -> Callable[[int], Callable[[int], None]]:
        def start(total: int) -> Callable[[int], None]:
            bar = ProgressBar(total, label="Creating flags", stream=self.stderr)
            bars.append(bar)
            return bar.advance

        return start


@contextmanager
def _quiet_services(verbosity: int) -> Iterator[None]:
    """Hide the services' per-change INFO logs (one per write) unless asked for with -v 2."""
    logger = logging.getLogger("flags.services")
    level = logger.level
    if verbosity < 2:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
