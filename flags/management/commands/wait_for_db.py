"""``manage.py wait_for_db [--timeout 30]``: block until the database answers (start-up)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flagship.db_wait import DatabaseWaitTimeoutError, wait_for_database


class Command(BaseCommand):
    """Wait for the database with exponential backoff and jitter; exit 1 on timeout."""

    help = "Wait until the database accepts connections (exponential backoff with jitter)."

    def add_arguments(self, parser: CommandParser) -> None:
        """``--timeout`` seconds (default 30) and ``--database`` alias."""
        parser.add_argument("--timeout", type=float, default=30.0, help="Seconds to wait.")
        parser.add_argument("--database", default="default", help="Database alias.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Wait, reporting each retry on stderr."""
        verbosity = int(options["verbosity"])

        def report(attempt: int, pause: float, error: Exception) -> None:
            if verbosity >= 1:
                first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
                self.stderr.write(
                    f"Database not ready (attempt {attempt}: {type(error).__name__}"
                    f"{': ' + first_line if first_line else ''}); retrying in {pause:.2f} s"
                )

        try:
            attempts = wait_for_database(
                timeout=options["timeout"], alias=options["database"], on_retry=report
            )
        except DatabaseWaitTimeoutError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"Database ready (after {attempts} attempt(s))."))
